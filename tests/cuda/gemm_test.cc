// CUDA Gemm (bf16 weights, fp32 activations) against kernels/cpu's reference loop; with int8
// weights (per-row scales, the CPU's format) against the CPU's int8 Gemm on the same q and scales.
// Tolerances: the exact path 1e-5 * sum_i |x_i * w_oi| per output, as the CPU tests (fp32
// accumulation in any order stays well inside it); the kBf16 cuBLAS path 2^-8 of the same sum
// (each activation rounded to bf16 moves its product by at most 2^-9 relative).
// Device tests: Skipped without a GPU.
#include <cmath>
#include <cstring>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/cublas_handle.h"
#include "kernels/cuda/kernels_cuda.h"
#include "kernels/kernels.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/testing/status_matchers.h"

namespace mmx::kernels::cuda {
namespace {

using ::mmx::kernels::testing::ExpectClose;
using ::mmx::kernels::testing::RandomVector;
using ::mmx::kernels::testing::TestWeights;
using ::mmx::testing::IsOk;
using testing::DeviceArray;
using testing::ToDevice;
using testing::ToHost;

struct Expected {
  std::vector<float> y, magnitude;  // reference output and sum_i |x_i * w_oi|
};

Expected Reference(const std::vector<float>& x, int64_t tokens, const TestWeights& w) {
  Expected e;
  e.y.resize(static_cast<size_t>(tokens * w.rows));
  reference::Gemm(x.data(), tokens, w.View(), e.y.data());
  e.magnitude.resize(e.y.size());
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t o = 0; o < w.rows; ++o) {
      double s = 0;
      for (int64_t i = 0; i < w.cols; ++i) s += std::fabs(x[t * w.cols + i] * Bf16ToFloat(w.half[o * w.cols + i]));
      e.magnitude[t * w.rows + o] = static_cast<float>(s);
    }
  }
  return e;
}

std::vector<float> Scaled(const std::vector<float>& v, double factor) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = static_cast<float>(factor * v[i] + 1e-30);
  return out;
}

// Runs the CUDA Gemm on device copies; `byte_offset` shifts the weights off 16-byte alignment.
std::vector<float> RunGemm(const std::vector<float>& x, int64_t tokens, const TestWeights& w,
                           const GemmOptions& options = {}, size_t byte_offset = 0) {
  std::vector<uint16_t> padded(w.half.size() + byte_offset / 2);
  std::memcpy(padded.data() + byte_offset / 2, w.half.data(), w.half.size() * sizeof(uint16_t));
  DeviceBuffer dw = ToDevice(padded), dx = ToDevice(x);
  DeviceBuffer dy = DeviceArray<float>(static_cast<size_t>(tokens * w.rows));
  const WeightView view{dw.as<char>() + byte_offset, DType::kBF16, w.rows, w.cols};
  EXPECT_THAT(Gemm(dx.as<float>(), tokens, view, dy.as<float>(), nullptr, options), IsOk());
  return ToHost<float>(dy, static_cast<size_t>(tokens * w.rows));
}

void CheckExact(int64_t rows, int64_t cols, int64_t tokens, uint32_t seed, size_t byte_offset = 0) {
  SCOPED_TRACE(::testing::Message() << "rows " << rows << " cols " << cols << " tokens " << tokens << " offset "
                                    << byte_offset);
  const TestWeights w(DType::kBF16, rows, cols, seed);
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), seed + 1);
  const Expected e = Reference(x, tokens, w);
  ExpectClose(RunGemm(x, tokens, w, {}, byte_offset), e.y, Scaled(e.magnitude, 1e-5), "cuda Gemm");
}

TEST(CudaGemmTest, MatchesCpuReferenceOnOddShapes) {
  MMX_SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (int64_t rows : {1, 3, 17, 65})
    for (int64_t cols : {1, 7, 8, 16, 33, 100, 2048})  // not multiples of 8 take the scalar kernel
      for (int64_t tokens : {1, 2, 3, 5, 8, 9, 13, 40}) CheckExact(rows, cols, tokens, seed++);
}

TEST(CudaGemmTest, MatchesCpuReferenceWithUnalignedWeights) {
  MMX_SKIP_WITHOUT_GPU();
  for (size_t offset : {2, 8, 14}) CheckExact(37, 512, 4, 11, offset);
}

TEST(CudaGemmTest, MatchesCpuReferenceAtTheExpertW1Shape) {
  MMX_SKIP_WITHOUT_GPU();
  // w1 of one expert: [F = 9216, H = 6144] (MODEL.md §5), at batch 1 and a full 8-token pass.
  CheckExact(9216, 6144, 1, 21);
  CheckExact(9216, 6144, 8, 22);
}

TEST(CudaGemmTest, ZeroColumnsGiveZeros) {
  MMX_SKIP_WITHOUT_GPU();
  DeviceBuffer dy = DeviceArray<float>(6);
  DeviceBuffer dummy = DeviceArray<float>(1);
  ASSERT_THAT(Gemm(dummy.as<float>(), 2, WeightView{dummy.data(), DType::kBF16, 3, 0}, dy.as<float>(), nullptr),
              IsOk());
  EXPECT_EQ(ToHost<float>(dy, 6), std::vector<float>(6, 0.f));
}

TEST(CudaGemmTest, Bf16ActivationPathIsWithinBf16RoundingOfExact) {
  MMX_SKIP_WITHOUT_GPU();
  absl::StatusOr<CublasHandle> cublas = CublasHandle::Create();
  ASSERT_THAT(cublas, IsOk());
  for (int64_t tokens : {9, 16, 67}) {
    SCOPED_TRACE(::testing::Message() << "tokens " << tokens);
    const TestWeights w(DType::kBF16, 300, 520, static_cast<uint32_t>(tokens));
    const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * w.cols), 5);
    const Expected e = Reference(x, tokens, w);
    GemmOptions options;
    options.precision = ActivationPrecision::kBf16;
    options.cublas = cublas->get();
    options.workspace_bytes = GemmWorkspaceBytes(tokens, w.View(), options);
    DeviceBuffer workspace = DeviceArray<char>(options.workspace_bytes);
    options.workspace = workspace.data();
    ExpectClose(RunGemm(x, tokens, w, options), e.y, Scaled(e.magnitude, 1.0 / 256), "cuda Gemm kBf16");
  }
}

// Few rows (a router, a tensor-parallel slice) with room for the K-split partials: the split
// GEMV and its in-order sum, against the reference.
TEST(CudaGemmTest, SplitKForFewRowsMatchesCpuReference) {
  MMX_SKIP_WITHOUT_GPU();
  uint32_t seed = 200;
  for (int64_t rows : {1, 8, 32, 130})
    for (int64_t cols : {2048, 6144})
      for (int64_t tokens : {1, 5, 8, 13}) {
        SCOPED_TRACE(::testing::Message() << "split: rows " << rows << " cols " << cols << " tokens " << tokens);
        const TestWeights w(DType::kBF16, rows, cols, seed);
        const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), seed + 1);
        const Expected e = Reference(x, tokens, w);
        const size_t need = GemmWorkspaceBytes(tokens, w.View(), GemmOptions{});
        ASSERT_GT(need, 0u);  // these shapes do split
        DeviceBuffer workspace = DeviceArray<char>(need);
        GemmOptions options;
        options.workspace = workspace.data();
        options.workspace_bytes = need;
        ExpectClose(RunGemm(x, tokens, w, options), e.y, Scaled(e.magnitude, 1e-5), "cuda Gemm, split K");
        seed += 2;
      }
}

// Weight-only int8: the same quantized matrix (kernels.h QuantizeInt8 of a bf16 one) through the
// CPU Gemm and the CUDA one. Both sum fp32 products scale * q * x in some order: 1e-5 of
// sum_i |x_i * scale * q_oi| per output.
void CheckInt8(int64_t rows, int64_t cols, int64_t tokens, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "int8 rows " << rows << " cols " << cols << " tokens " << tokens);
  const TestWeights source(DType::kBF16, rows, cols, seed);
  std::vector<int8_t> q(static_cast<size_t>(rows * cols));
  std::vector<float> scales(static_cast<size_t>(rows));
  kernels::QuantizeInt8(source.View(), q.data(), scales.data());
  const WeightView host{q.data(), DType::kI8, rows, cols, scales.data()};
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), seed + 1);
  std::vector<float> expected(static_cast<size_t>(tokens * rows)), magnitude(expected.size());
  kernels::Gemm(x.data(), tokens, host, expected.data());
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t o = 0; o < rows; ++o) {
      double m = 0;
      for (int64_t i = 0; i < cols; ++i) m += std::fabs(x[t * cols + i] * scales[o] * q[o * cols + i]);
      magnitude[t * rows + o] = static_cast<float>(1e-5 * m + 1e-30);
    }
  }
  DeviceBuffer dq = ToDevice(q), ds = ToDevice(scales), dx = ToDevice(x);
  DeviceBuffer dy = DeviceArray<float>(expected.size());
  const WeightView device{dq.data(), DType::kI8, rows, cols, ds.as<const float>()};
  ASSERT_THAT(Gemm(dx.as<float>(), tokens, device, dy.as<float>(), nullptr), IsOk());
  ExpectClose(ToHost<float>(dy, expected.size()), expected, magnitude, "cuda int8 Gemm");
}

TEST(CudaGemmInt8Test, MatchesTheCpuInt8KernelOnOddShapesAndTokenCounts) {
  MMX_SKIP_WITHOUT_GPU();
  uint32_t seed = 300;
  for (int64_t rows : {1, 3, 17, 65})
    for (int64_t cols : {1, 15, 16, 48, 100, 2048})  // not multiples of 16 take the scalar kernel
      for (int64_t tokens : {1, 2, 5, 8, 9, 16, 17, 32, 33, 70}) CheckInt8(rows, cols, tokens, seed++);
}

TEST(CudaGemmInt8Test, MatchesTheCpuInt8KernelAtTheExpertW1Shape) {
  MMX_SKIP_WITHOUT_GPU();
  CheckInt8(9216, 6144, 1, 31);
  CheckInt8(9216, 6144, 32, 32);
}

}  // namespace
}  // namespace mmx::kernels::cuda
