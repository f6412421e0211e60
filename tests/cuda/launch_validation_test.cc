// kernels_cuda.h's argument checks, which run on the host before anything is enqueued: these
// run everywhere, GPU or not, and never reach a kernel (any pointer they pass is never read).
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cuda/kernels_cuda.h"
#include "tests/testing/status_matchers.h"

namespace mmx::kernels::cuda {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

// Stand-ins for device pointers: validation only compares them with null.
float* const kPtr = reinterpret_cast<float*>(uintptr_t{256});
const int64_t* const kPositions = reinterpret_cast<const int64_t*>(uintptr_t{256});
int* const kIds = reinterpret_cast<int*>(uintptr_t{256});
const int32_t* const kTokenIds = reinterpret_cast<const int32_t*>(uintptr_t{256});

WeightView Bf16Weights(int64_t rows, int64_t cols) { return WeightView{kPtr, DType::kBF16, rows, cols}; }

TEST(CudaLaunchValidationTest, GemmRefusesWeightsThatAreNotBf16OrInt8AndInt8WithoutScales) {
  for (DType dtype : {DType::kF16, DType::kF32}) {
    EXPECT_THAT(Gemm(kPtr, 1, WeightView{kPtr, dtype, 4, 8}, kPtr, nullptr),
                StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("BF16 and int8 weights")));
  }
  EXPECT_THAT(Gemm(kPtr, 1, WeightView{kPtr, DType::kI8, 4, 16}, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Gemm: w.scales is null")));
}

TEST(CudaLaunchValidationTest, TheExactGemvSplitsKOnlyWhenTheRowsAreFew) {
  // The router of the real model [32, 6144]: 2 row blocks, so K is split 24 ways (32 16-byte
  // chunks of a row per split), partials for up to 8 tokens a pass.
  EXPECT_EQ(GemmWorkspaceBytes(1, Bf16Weights(32, 6144), GemmOptions{}), 24u * 1u * 32u * 4u);
  EXPECT_EQ(GemmWorkspaceBytes(20, Bf16Weights(32, 6144), GemmOptions{}), 24u * 8u * 32u * 4u);
  // An expert's w1 [9216, 6144] has 576 row blocks: no split.
  EXPECT_EQ(GemmWorkspaceBytes(1, Bf16Weights(9216, 6144), GemmOptions{}), 0u);
  // Too few columns to split, and int8 weights (their own kernel): none either.
  EXPECT_EQ(GemmWorkspaceBytes(1, Bf16Weights(32, 128), GemmOptions{}), 0u);
  EXPECT_EQ(GemmWorkspaceBytes(1, WeightView{kPtr, DType::kI8, 32, 6144}, GemmOptions{}), 0u);
}

TEST(CudaLaunchValidationTest, GemmBf16ActivationPathNeedsCublasAndWorkspace) {
  GemmOptions options;
  options.precision = ActivationPrecision::kBf16;
  const WeightView w = Bf16Weights(64, 100);
  EXPECT_EQ(GemmWorkspaceBytes(9, w, options), 9u * 100u * 2u);
  EXPECT_EQ(GemmWorkspaceBytes(8, w, options), 0u);  // 8 tokens stay on the exact GEMV
  EXPECT_EQ(GemmWorkspaceBytes(9, w, GemmOptions{}), 0u);
  EXPECT_THAT(Gemm(kPtr, 9, w, kPtr, nullptr, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("GemmOptions::cublas")));
  options.cublas = reinterpret_cast<cublasHandle_t>(uintptr_t{256});
  options.workspace = kPtr;
  options.workspace_bytes = 9 * 100 * 2 - 1;
  EXPECT_THAT(Gemm(kPtr, 9, w, kPtr, nullptr, options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("smaller than the 1800 bytes")));
}

TEST(CudaLaunchValidationTest, RejectsNegativeSizesAndNullPointers) {
  EXPECT_THAT(Gemm(kPtr, -1, Bf16Weights(4, 8), kPtr, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Gemm(nullptr, 1, Bf16Weights(4, 8), kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x is null")));
  EXPECT_THAT(RmsNorm(kPtr, 2, 16, nullptr, 1e-5f, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("gamma is null")));
  EXPECT_THAT(SiluMul(kPtr, kPtr, -3, kPtr, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(SigmoidMulInPlace(nullptr, kPtr, 5, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CudaLaunchValidationTest, ZeroSizedWorkLaunchesNothing) {
  // OK without a GPU: nothing reaches CUDA.
  EXPECT_THAT(Gemm(kPtr, 0, Bf16Weights(4, 8), kPtr, nullptr), IsOk());
  EXPECT_THAT(Gemm(kPtr, 3, Bf16Weights(0, 8), kPtr, nullptr), IsOk());
  EXPECT_THAT(RmsNorm(kPtr, 0, 16, kPtr, 1e-5f, kPtr, nullptr), IsOk());
  EXPECT_THAT(SiluMul(kPtr, kPtr, 0, kPtr, nullptr), IsOk());
  EXPECT_THAT(SigmoidMulInPlace(kPtr, kPtr, 0, nullptr), IsOk());
  EXPECT_THAT(ApplyRope(kPtr, 0, 8, 128, 64, kPositions, kPtr, nullptr), IsOk());
  EXPECT_THAT(RouterTopK(kPtr, 0, 32, 2, kIds, kPtr, nullptr), IsOk());
  EXPECT_THAT(ArgmaxRows(kPtr, 0, 100, kIds, nullptr), IsOk());
  const float slopes[1] = {0.5f};
  LightningDecodeParams lightning;
  lightning.shape = LightningShape{1, 8, slopes, 256};
  EXPECT_THAT(LightningDecode(lightning, nullptr), IsOk());
  EXPECT_THAT(SiluInPlace(kPtr, 0, nullptr), IsOk());
  EXPECT_THAT(Axpby(1.f, kPtr, 1.f, kPtr, 0, kPtr, nullptr), IsOk());
  EXPECT_THAT(EmbedRows(Bf16Weights(100, 16), kTokenIds, 0, kPtr, nullptr), IsOk());
  EXPECT_THAT(EmbedRows(Bf16Weights(100, 0), kTokenIds, 4, kPtr, nullptr), IsOk());
  EXPECT_THAT(GatherRows(kPtr, kPositions, 0, 16, kPtr, nullptr), IsOk());
  EXPECT_THAT(GatherRows(kPtr, kPositions, 4, 0, kPtr, nullptr), IsOk());
  EXPECT_THAT(ScaleScatterRows(kPtr, kPtr, kPositions, 0, 16, kPtr, nullptr), IsOk());
  EXPECT_THAT(LightningPrefill(LightningShape{1, 8, slopes, 256}, kPtr, 0, kPtr, kPtr, nullptr), IsOk());
  EXPECT_THAT(LightningPrefillBlocked(LightningShape{1, 64, slopes, 256}, kPtr, 0, kPtr, kPtr, nullptr), IsOk());
  EXPECT_THAT(LightningPrefillBlocked(LightningShape{64, 128, slopes, 256}, nullptr, 0, nullptr, nullptr, nullptr),
              IsOk());
  EXPECT_THAT(CausalAttention(AttentionShape{8, 2, 64, 0.125f}, kPtr, 0, kPtr, kPtr, 10, kPtr, nullptr), IsOk());
}

TEST(CudaLaunchValidationTest, ElementwiseAndRowMovesRejectNegativeSizesAndNullPointers) {
  EXPECT_THAT(SiluInPlace(nullptr, 4, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("SiluInPlace: x is null")));
  EXPECT_THAT(SiluInPlace(kPtr, -1, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative")));
  EXPECT_THAT(Axpby(1.f, kPtr, 2.f, nullptr, 4, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("Axpby: b is null")));
  EXPECT_THAT(Axpby(1.f, kPtr, 2.f, kPtr, -4, kPtr, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(EmbedRows(Bf16Weights(100, 16), nullptr, 4, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("EmbedRows: ids is null")));
  EXPECT_THAT(EmbedRows(WeightView{nullptr, DType::kF16, 100, 16}, kTokenIds, 4, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("embed.data is null")));
  EXPECT_THAT(EmbedRows(Bf16Weights(100, 16), kTokenIds, -1, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative size")));
  EXPECT_THAT(GatherRows(kPtr, nullptr, 4, 16, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("GatherRows: index is null")));
  EXPECT_THAT(GatherRows(kPtr, kPositions, 4, -16, kPtr, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ScaleScatterRows(kPtr, nullptr, kPositions, 4, 16, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("ScaleScatterRows: scale is null")));
  EXPECT_THAT(ScaleScatterRows(kPtr, kPtr, kPositions, -4, 16, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CudaLaunchValidationTest, EmbedRowsRefusesInt8Tables) {
  const float scales[2] = {1.f, 1.f};
  EXPECT_THAT(EmbedRows(WeightView{kPtr, DType::kI8, 2, 16, scales}, kTokenIds, 4, kPtr, nullptr),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("got I8")));
  // Even with nothing to do: the dtype is wrong whatever the batch.
  EXPECT_THAT(EmbedRows(WeightView{kPtr, DType::kI8, 2, 16, scales}, kTokenIds, 0, kPtr, nullptr),
              StatusIs(absl::StatusCode::kUnimplemented));
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
    EXPECT_THAT(EmbedRows(WeightView{kPtr, dtype, 2, 16}, kTokenIds, 0, kPtr, nullptr), IsOk());
  }
}

TEST(CudaLaunchValidationTest, LightningPrefillChecksShapeLengthAndPointers) {
  const float slopes[1] = {0.5f};
  const LightningShape model{64, 128, slopes, 256};
  EXPECT_THAT(LightningPrefill(LightningShape{1, 1024, slopes, 256}, kPtr, 4, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("head_dim <= 512")));
  EXPECT_THAT(LightningPrefill(LightningShape{0, 128, slopes, 256}, kPtr, 4, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_heads >= 1")));
  EXPECT_THAT(LightningPrefill(model, kPtr, -1, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative n")));
  EXPECT_THAT(LightningPrefill(model, kPtr, 4, nullptr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("LightningPrefill: state is null")));
  EXPECT_THAT(LightningPrefill(LightningShape{64, 128, nullptr, 256}, kPtr, 4, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shape.slopes is null")));
}

TEST(CudaLaunchValidationTest, LightningPrefillBlockedChecksShapeLengthAndPointers) {
  const float slopes[1] = {0.5f};
  const LightningShape model{64, 128, slopes, 256};
  EXPECT_THAT(LightningPrefillBlocked(LightningShape{0, 128, slopes, 256}, kPtr, 4, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("LightningPrefillBlocked: need num_heads >= 1")));
  EXPECT_THAT(LightningPrefillBlocked(LightningShape{4, 0, slopes, 256}, kPtr, 4, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("head_dim >= 1")));
  EXPECT_THAT(LightningPrefillBlocked(model, kPtr, -1, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative n")));
  EXPECT_THAT(LightningPrefillBlocked(model, nullptr, 4, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("LightningPrefillBlocked: qkv is null")));
  EXPECT_THAT(LightningPrefillBlocked(model, kPtr, 4, nullptr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("LightningPrefillBlocked: state is null")));
  EXPECT_THAT(LightningPrefillBlocked(model, kPtr, 4, kPtr, nullptr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("LightningPrefillBlocked: out is null")));
  EXPECT_THAT(LightningPrefillBlocked(LightningShape{64, 128, nullptr, 256}, kPtr, 4, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shape.slopes is null")));
}

TEST(CudaLaunchValidationTest, LightningPrefillBlockedIsBuiltForHeadDim64And128Only) {
  const float slopes[1] = {0.5f};
  for (int dim : {16, 32, 96, 192, 256, 512}) {
    EXPECT_THAT(LightningPrefillBlocked(LightningShape{4, dim, slopes, 256}, kPtr, 4, kPtr, kPtr, nullptr),
                StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("built for head_dim 64 and 128, got")))
        << dim;
  }
  // Even with nothing to do: the shape is wrong whatever the length.
  EXPECT_THAT(LightningPrefillBlocked(LightningShape{4, 96, slopes, 256}, kPtr, 0, kPtr, kPtr, nullptr),
              StatusIs(absl::StatusCode::kUnimplemented, HasSubstr("LightningPrefill (CUDA cores, fp32)")));
}

TEST(CudaLaunchValidationTest, PrefillAttentionChecksGqaHeadDimLengthAndPointers) {
  const AttentionShape model{64, 8, 128, 0.08838834764831845f};
  EXPECT_THAT(CausalAttention(AttentionShape{12, 5, 64, 0.125f}, kPtr, 4, kPtr, kPtr, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CausalAttention: num_heads must be")));
  EXPECT_THAT(CausalAttention(AttentionShape{12, 4, 512, 0.125f}, kPtr, 4, kPtr, kPtr, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("head_dim")));
  EXPECT_THAT(CausalAttention(model, kPtr, 11, kPtr, kPtr, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("total_len (10) must count the 11 new rows")));
  EXPECT_THAT(CausalAttention(model, kPtr, -1, kPtr, kPtr, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("negative n")));
  EXPECT_THAT(CausalAttention(model, kPtr, 4, nullptr, kPtr, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CausalAttention: k is null")));
  // The GQA group of 8 query heads per KV head is one block's chunk; 2^20 query heads per KV head
  // would need more chunks than a grid's z dimension holds.
  EXPECT_THAT(CausalAttention(AttentionShape{1 << 20, 1, 64, 0.125f}, kPtr, 4, kPtr, kPtr, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too many query heads per KV head")));
}

TEST(CudaLaunchValidationTest, RopeNeedsAnEvenRotaryDimWithinTheHead) {
  EXPECT_THAT(ApplyRope(kPtr, 1, 8, 128, 63, kPositions, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("rotary_dim must be even")));
  EXPECT_THAT(ApplyRope(kPtr, 1, 8, 64, 66, kPositions, kPtr, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CudaLaunchValidationTest, RouterNeedsKBetweenOneAndTheExpertCount) {
  EXPECT_THAT(RouterTopK(kPtr, 4, 32, 0, kIds, kPtr, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RouterTopK(kPtr, 4, 3, 4, kIds, kPtr, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(RouterTopK(kPtr, 4, 64, kMaxRouterK + 1, kIds, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k 9 of 64 experts")));
}

TEST(CudaLaunchValidationTest, ArgmaxNeedsANonEmptyVocabulary) {
  EXPECT_THAT(ArgmaxRows(kPtr, 2, 0, kIds, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("vocab must be in [1, 2^31)")));
  EXPECT_THAT(ArgmaxRows(kPtr, 2, int64_t{1} << 31, kIds, nullptr), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CudaLaunchValidationTest, LightningChecksShapeSlotsAndPointers) {
  const float slopes[1] = {0.5f};
  LightningDecodeParams p;
  p.shape = LightningShape{1, 1024, slopes, 256};
  p.qkv = p.state_pool = p.out = kPtr;
  p.slots = reinterpret_cast<const int32_t*>(kPtr);
  p.num_seqs = 1;
  p.num_slots = 1;
  EXPECT_THAT(LightningDecode(p, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("head_dim <= 512")));
  p.shape.head_dim = 128;
  p.num_slots = 0;
  EXPECT_THAT(LightningDecode(p, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("num_slots")));
  p.num_slots = 4;
  p.slots = nullptr;
  EXPECT_THAT(LightningDecode(p, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("slots is null")));
}

TEST(CudaLaunchValidationTest, PagedAttentionNeedsPageTablesWholeTilesAndFp32OrBf16) {
  const AttentionShape model{8, 2, 128, 0.088f};
  const void* const* table = reinterpret_cast<const void* const*>(kPtr);
  PagedKv kv;
  kv.k_pages = kv.v_pages = table;
  kv.page_rows = 64;
  kv.dtype = DType::kBF16;
  EXPECT_THAT(CausalAttentionPaged(model, kPtr, 0, kv, 10, kPtr, nullptr), IsOk());  // n == 0: nothing to do
  kv.page_rows = 48;
  EXPECT_THAT(CausalAttentionPaged(model, kPtr, 4, kv, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_rows must be a positive multiple of 32")));
  kv.page_rows = 64;
  kv.dtype = DType::kF16;
  EXPECT_THAT(CausalAttentionPaged(model, kPtr, 4, kv, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("fp32 or bf16 expected")));
  kv.dtype = DType::kF32;
  kv.v_pages = nullptr;
  EXPECT_THAT(CausalAttentionPaged(model, kPtr, 4, kv, 10, kPtr, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CausalAttentionPaged: v_pages is null")));
  CausalAttentionDecodeParams p;
  p.shape = model;
  p.q = p.out = kPtr;
  p.total_len = 10;
  std::vector<char> workspace(CausalAttentionDecodeWorkspaceBytes(model, 10));
  p.workspace = workspace.data();
  p.workspace_bytes = workspace.size();
  EXPECT_THAT(CausalAttentionDecode(p, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CausalAttentionDecode: k_pages is null")));
}

TEST(CudaLaunchValidationTest, AttentionWorkspaceCoversEverySplit) {
  const AttentionShape model{64, 8, 128, 0.08838834764831845f};
  // 32k keys: 128 splits of 256 keys, 2 warps each, one (max, sum, acc[128]) per head.
  EXPECT_EQ(CausalAttentionDecodeWorkspaceBytes(model, 32768), 128u * 2u * 64u * 130u * 4u);
  // Short contexts: one split.
  EXPECT_EQ(CausalAttentionDecodeWorkspaceBytes(model, 1), 1u * 2u * 64u * 130u * 4u);
  EXPECT_EQ(CausalAttentionDecodeWorkspaceBytes(model, 0), 0u);
  // Long contexts stay at 128 splits: the workspace does not grow with the context.
  EXPECT_EQ(CausalAttentionDecodeWorkspaceBytes(model, 1 << 20), CausalAttentionDecodeWorkspaceBytes(model, 32768));
}

TEST(CudaLaunchValidationTest, AttentionChecksGqaHeadDimLengthAndWorkspace) {
  CausalAttentionDecodeParams p;
  p.shape = AttentionShape{12, 5, 64, 0.125f};
  p.q = p.k = p.v = p.out = kPtr;
  p.total_len = 10;
  p.workspace = kPtr;
  p.workspace_bytes = 1 << 30;
  EXPECT_THAT(CausalAttentionDecode(p, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("multiple of num_kv_heads")));
  p.shape = AttentionShape{12, 4, 512, 0.125f};
  EXPECT_THAT(CausalAttentionDecode(p, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("head_dim")));
  p.shape.head_dim = 64;
  p.total_len = 0;
  EXPECT_THAT(CausalAttentionDecode(p, nullptr), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("total_len")));
  p.total_len = 10;
  p.workspace_bytes = CausalAttentionDecodeWorkspaceBytes(p.shape, p.total_len) - 4;
  EXPECT_THAT(CausalAttentionDecode(p, nullptr),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("CausalAttentionDecodeWorkspaceBytes")));
}

}  // namespace
}  // namespace mmx::kernels::cuda
