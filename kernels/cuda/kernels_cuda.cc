// The launchers of kernels_cuda.h: validate on the host, pick a path, enqueue the kernels of
// launch.h (or cuBLAS), and turn the launch result into a Status. Validation never touches the
// GPU, so the argument errors are testable on machines without one.
#include "kernels/cuda/kernels_cuda.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <mutex>
#include <map>
#include <string>
#include <utility>

#include <cublas_v2.h>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/launch.h"

namespace mmx::kernels::cuda {
namespace {

static_assert(kMaxGemvTokens == internal::kMaxGemvTokens);
static_assert(kMaxRouterK == internal::kMaxRouterK);

constexpr int64_t kMaxGridX = std::numeric_limits<int32_t>::max();
constexpr int64_t kMaxGridYZ = 65535;

absl::Status Invalid(absl::string_view fn, absl::string_view message) {
  return absl::InvalidArgumentError(absl::StrCat(fn, ": ", message));
}

absl::Status Launched(cudaError_t err, absl::string_view fn) {
  return CudaStatus(err, absl::StrCat(fn, ": kernel launch"));
}

// kInvalidArgument naming the first null pointer among `pointers`.
absl::Status NonNull(absl::string_view fn, std::initializer_list<std::pair<const char*, const void*>> pointers) {
  for (const auto& [name, p] : pointers) {
    if (p == nullptr) return Invalid(fn, absl::StrCat(name, " is null"));
  }
  return absl::OkStatus();
}

// The device's compute capability, asked of the driver once per device (every launch of the
// blocked lightning prefill checks it).
absl::StatusOr<std::pair<int, int>> ComputeCapability(int device) {
  static std::mutex mu;
  static std::map<int, std::pair<int, int>> known;
  std::lock_guard<std::mutex> lock(mu);
  if (auto it = known.find(device); it != known.end()) return it->second;
  int major = 0, minor = 0;
  MMX_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, device));
  MMX_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, device));
  known[device] = {major, minor};
  return known[device];
}

// The cache rows of a contiguous fp32 cache (k, v) or a paged one, checked.
absl::StatusOr<internal::KvRows> CheckKv(absl::string_view fn, const float* k, const float* v, const PagedKv* paged) {
  internal::KvRows rows{k, v, nullptr, nullptr, 0, false};
  if (paged == nullptr || (k != nullptr || v != nullptr)) {
    MMX_RETURN_IF_ERROR(NonNull(fn, {{"k", k}, {"v", v}}));
    return rows;
  }
  MMX_RETURN_IF_ERROR(NonNull(fn, {{"k_pages", paged->k_pages}, {"v_pages", paged->v_pages}}));
  if (paged->page_rows < 1 || paged->page_rows % internal::kAttentionKeysPerWarpTile != 0) {
    return Invalid(fn, absl::StrCat("page_rows must be a positive multiple of ", internal::kAttentionKeysPerWarpTile,
                                    ", got ", paged->page_rows));
  }
  if (paged->dtype != DType::kF32 && paged->dtype != DType::kBF16) {
    return Invalid(fn, absl::StrCat("a KV cache of ", DTypeName(paged->dtype), ": fp32 or bf16 expected"));
  }
  rows.k_pages = paged->k_pages;
  rows.v_pages = paged->v_pages;
  rows.page_rows = paged->page_rows;
  rows.bf16 = paged->dtype == DType::kBF16;
  return rows;
}

// The shape checks CausalAttention and CausalAttentionDecode share.
absl::Status CheckAttentionShape(absl::string_view fn, const AttentionShape& s) {
  if (s.num_heads < 1 || s.num_kv_heads < 1 || s.num_heads % s.num_kv_heads != 0) {
    return Invalid(fn, absl::StrCat("num_heads must be a positive multiple of num_kv_heads, got ", s.num_heads,
                                    " and ", s.num_kv_heads));
  }
  if (s.head_dim < 1 || s.head_dim > internal::kMaxAttentionHeadDim) {
    return Invalid(fn, absl::StrCat("head_dim must be in [1, ", internal::kMaxAttentionHeadDim, "], got ",
                                    s.head_dim));
  }
  if (s.num_kv_heads > kMaxGridYZ || s.num_heads > kMaxGridX) return Invalid(fn, "too many heads");
  return absl::OkStatus();
}

bool UsesCublas(int64_t num_tokens, const WeightView& w, const GemmOptions& options) {
  return options.precision == ActivationPrecision::kBf16 && num_tokens > kMaxGemvTokens &&
         w.dtype == DType::kBF16;
}

// y = x w^T with bf16 activations on tensor cores. Row-major y [T, rows] is column-major
// [rows, T] = W [rows, cols] (column-major w^T, transposed) times X^T [cols, T].
absl::Status CublasGemm(const float* x, int64_t num_tokens, const WeightView& w, float* y, cudaStream_t stream,
                        const GemmOptions& options) {
  constexpr absl::string_view kFn = "Gemm (kBf16, cuBLAS)";
  if (options.cublas == nullptr) {
    return Invalid(kFn, absl::StrCat("more than ", kMaxGemvTokens,
                                     " tokens with ActivationPrecision::kBf16 need GemmOptions::cublas "
                                     "(CublasHandle::Create())"));
  }
  const size_t need = GemmWorkspaceBytes(num_tokens, w, options);
  if (options.workspace == nullptr || options.workspace_bytes < need) {
    return Invalid(kFn, absl::StrCat("workspace of ", options.workspace_bytes, " bytes is smaller than the ", need,
                                     " bytes GemmWorkspaceBytes() asks for"));
  }
  const int64_t int_max = std::numeric_limits<int>::max();
  if (num_tokens > int_max || w.rows > int_max || w.cols > int_max) {
    return Invalid(kFn, "dimensions must fit in int for cuBLAS");
  }
  auto* x_bf16 = static_cast<uint16_t*>(options.workspace);
  MMX_RETURN_IF_ERROR(Launched(internal::LaunchFloatToBf16(x, num_tokens * w.cols, x_bf16, stream), kFn));
  MMX_CUDA_RETURN_IF_ERROR(cublasSetStream(options.cublas, stream));
  const float alpha = 1.f, beta = 0.f;
  const int m = static_cast<int>(w.rows), n = static_cast<int>(num_tokens), k = static_cast<int>(w.cols);
  MMX_CUDA_RETURN_IF_ERROR(cublasGemmEx(options.cublas, CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha, w.data,
                                        CUDA_R_16BF, k, x_bf16, CUDA_R_16BF, k, &beta, y, CUDA_R_32F, m,
                                        CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
  return absl::OkStatus();
}

}  // namespace

size_t GemmWorkspaceBytes(int64_t num_tokens, const WeightView& w, const GemmOptions& options) {
  if (UsesCublas(num_tokens, w, options)) {
    return static_cast<size_t>(num_tokens) * static_cast<size_t>(w.cols) * sizeof(uint16_t);
  }
  if (w.dtype != DType::kBF16) return 0;
  // The GEMV's K-split partials, for shapes with too few rows to fill the GPU.
  const int splits = internal::GemvBf16Splits(w.rows, w.cols);
  if (splits <= 1) return 0;
  const int64_t tokens = std::min<int64_t>(num_tokens, kMaxGemvTokens);
  return static_cast<size_t>(splits) * static_cast<size_t>(tokens * w.rows) * sizeof(float);
}

absl::Status Gemm(const float* x, int64_t num_tokens, const WeightView& w, float* y, cudaStream_t stream,
                  const GemmOptions& options) {
  constexpr absl::string_view kFn = "Gemm";
  if (num_tokens < 0 || w.rows < 0 || w.cols < 0) {
    return Invalid(kFn, absl::StrCat("negative size: num_tokens ", num_tokens, ", w [", w.rows, ", ", w.cols, "]"));
  }
  if (w.dtype != DType::kBF16 && w.dtype != DType::kI8) {
    return absl::UnimplementedError(absl::StrCat("CUDA Gemm supports BF16 and int8 weights, got ",
                                                 DTypeName(w.dtype), " [", w.rows, ", ", w.cols, "]"));
  }
  if (num_tokens == 0 || w.rows == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"y", y}}));
  if (w.cols == 0) {  // empty sums
    MMX_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(y, 0, static_cast<size_t>(num_tokens * w.rows) * sizeof(float), stream));
    return absl::OkStatus();
  }
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"x", x}, {"w.data", w.data}}));
  if (w.rows > kMaxGridX) return Invalid(kFn, absl::StrCat("w.rows ", w.rows, " exceeds ", kMaxGridX));
  if (w.dtype == DType::kI8) {
    // Weight-only int8 (per-row scales): its own kernel whatever the activation mode, the
    // weights read once per kMaxGemvInt8Tokens tokens.
    MMX_RETURN_IF_ERROR(NonNull(kFn, {{"w.scales", w.scales}}));
    const auto* q = static_cast<const int8_t*>(w.data);
    for (int64_t t0 = 0; t0 < num_tokens; t0 += internal::kMaxGemvInt8Tokens) {
      const int tokens = static_cast<int>(std::min<int64_t>(internal::kMaxGemvInt8Tokens, num_tokens - t0));
      const internal::GemvInt8Args args{x + t0 * w.cols, tokens, q, w.scales, w.rows, w.cols, y + t0 * w.rows};
      MMX_RETURN_IF_ERROR(Launched(internal::LaunchGemvInt8(args, stream), kFn));
    }
    return absl::OkStatus();
  }
  if (UsesCublas(num_tokens, w, options)) return CublasGemm(x, num_tokens, w, y, stream, options);
  const auto* wd = static_cast<const uint16_t*>(w.data);
  // Few rows (a router, a tensor-parallel slice): split K over more blocks when the caller gave
  // room for the partials (GemmWorkspaceBytes); without it, one block per 16 rows still works.
  const int splits = internal::GemvBf16Splits(w.rows, w.cols);
  const bool split = splits > 1 && options.workspace != nullptr &&
                     options.workspace_bytes >= GemmWorkspaceBytes(num_tokens, w, options);
  for (int64_t t0 = 0; t0 < num_tokens; t0 += kMaxGemvTokens) {
    const int tokens = static_cast<int>(std::min<int64_t>(kMaxGemvTokens, num_tokens - t0));
    internal::GemvArgs args{x + t0 * w.cols, tokens, wd, w.rows, w.cols, y + t0 * w.rows};
    if (split) {
      args.splits = splits;
      args.partials = static_cast<float*>(options.workspace);
    }
    MMX_RETURN_IF_ERROR(Launched(internal::LaunchGemvBf16(args, stream), kFn));
  }
  return absl::OkStatus();
}

absl::Status RmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma, float eps, float* out,
                     cudaStream_t stream) {
  constexpr absl::string_view kFn = "RmsNorm";
  if (num_tokens < 0 || n < 0) return Invalid(kFn, absl::StrCat("negative size: ", num_tokens, " x ", n));
  if (num_tokens > kMaxGridX) return Invalid(kFn, absl::StrCat("num_tokens ", num_tokens, " exceeds ", kMaxGridX));
  if (num_tokens == 0 || n == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"x", x}, {"gamma", gamma}, {"out", out}}));
  return Launched(internal::LaunchRmsNorm(x, num_tokens, n, gamma, eps, out, stream), kFn);
}

absl::Status SiluMul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream) {
  constexpr absl::string_view kFn = "SiluMul";
  if (n < 0) return Invalid(kFn, absl::StrCat("negative size ", n));
  if (n == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"gate", gate}, {"up", up}, {"out", out}}));
  return Launched(internal::LaunchSiluMul(gate, up, n, out, stream), kFn);
}

absl::Status SigmoidMulInPlace(const float* gate, float* x, int64_t n, cudaStream_t stream) {
  constexpr absl::string_view kFn = "SigmoidMulInPlace";
  if (n < 0) return Invalid(kFn, absl::StrCat("negative size ", n));
  if (n == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"gate", gate}, {"x", x}}));
  return Launched(internal::LaunchSigmoidMulInPlace(gate, x, n, stream), kFn);
}

absl::Status SiluInPlace(float* x, int64_t n, cudaStream_t stream) {
  constexpr absl::string_view kFn = "SiluInPlace";
  if (n < 0) return Invalid(kFn, absl::StrCat("negative size ", n));
  if (n == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"x", x}}));
  return Launched(internal::LaunchSiluInPlace(x, n, stream), kFn);
}

absl::Status Axpby(float alpha, const float* a, float beta, const float* b, int64_t n, float* out,
                   cudaStream_t stream) {
  constexpr absl::string_view kFn = "Axpby";
  if (n < 0) return Invalid(kFn, absl::StrCat("negative size ", n));
  if (n == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"a", a}, {"b", b}, {"out", out}}));
  return Launched(internal::LaunchAxpby(alpha, a, beta, b, n, out, stream), kFn);
}

absl::Status ApplyRope(float* x, int64_t num_tokens, int num_heads, int head_dim, int rotary_dim,
                       const int64_t* positions, const float* inv_freq, cudaStream_t stream) {
  constexpr absl::string_view kFn = "ApplyRope";
  if (num_tokens < 0 || num_heads < 0 || head_dim < 0) {
    return Invalid(kFn, absl::StrCat("negative size: ", num_tokens, " tokens, ", num_heads, " heads x ", head_dim));
  }
  if (rotary_dim < 0 || rotary_dim % 2 != 0 || rotary_dim > head_dim) {
    return Invalid(kFn, absl::StrCat("rotary_dim must be even and in [0, head_dim = ", head_dim, "], got ",
                                     rotary_dim));
  }
  if (num_tokens == 0 || num_heads == 0 || rotary_dim == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"x", x}, {"positions", positions}, {"inv_freq", inv_freq}}));
  const internal::RopeArgs args{x, num_tokens, num_heads, head_dim, rotary_dim, positions, inv_freq};
  return Launched(internal::LaunchApplyRope(args, stream), kFn);
}

absl::Status EmbedRows(const WeightView& embed, const int32_t* ids, int64_t num_tokens, float* out,
                       cudaStream_t stream) {
  constexpr absl::string_view kFn = "EmbedRows";
  if (num_tokens < 0 || embed.rows < 0 || embed.cols < 0) {
    return Invalid(kFn, absl::StrCat("negative size: num_tokens ", num_tokens, ", embed [", embed.rows, ", ",
                                     embed.cols, "]"));
  }
  internal::EmbedDType dtype;
  switch (embed.dtype) {
    case DType::kBF16: dtype = internal::EmbedDType::kBf16; break;
    case DType::kF16: dtype = internal::EmbedDType::kF16; break;
    case DType::kF32: dtype = internal::EmbedDType::kF32; break;
    default:
      return absl::UnimplementedError(absl::StrCat("CUDA EmbedRows reads BF16, F16 or F32 embeddings, got ",
                                                   DTypeName(embed.dtype), " [", embed.rows, ", ", embed.cols, "]"));
  }
  if (num_tokens == 0 || embed.cols == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"embed.data", embed.data}, {"ids", ids}, {"out", out}}));
  const internal::EmbedRowsArgs args{embed.data, dtype, embed.rows, embed.cols, ids, num_tokens, out};
  return Launched(internal::LaunchEmbedRows(args, stream), kFn);
}

absl::Status GatherRows(const float* src, const int64_t* index, int64_t n, int64_t width, float* dst,
                        cudaStream_t stream) {
  constexpr absl::string_view kFn = "GatherRows";
  if (n < 0 || width < 0) return Invalid(kFn, absl::StrCat("negative size: ", n, " rows x ", width));
  if (n == 0 || width == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"src", src}, {"index", index}, {"dst", dst}}));
  return Launched(internal::LaunchGatherRows(src, index, n, width, dst, stream), kFn);
}

absl::Status ConvertToBf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream) {
  constexpr absl::string_view kFn = "ConvertToBf16";
  if (n < 0) return Invalid(kFn, absl::StrCat("negative size ", n));
  if (n == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"x", x}, {"out", out}}));
  return Launched(internal::LaunchFloatToBf16(x, n, out, stream), kFn);
}

absl::Status ScaleScatterRows(const float* src, const float* scale, const int64_t* index, int64_t n, int64_t width,
                              float* dst, cudaStream_t stream) {
  constexpr absl::string_view kFn = "ScaleScatterRows";
  if (n < 0 || width < 0) return Invalid(kFn, absl::StrCat("negative size: ", n, " rows x ", width));
  if (n == 0 || width == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"src", src}, {"scale", scale}, {"index", index}, {"dst", dst}}));
  return Launched(internal::LaunchScaleScatterRows(src, scale, index, n, width, dst, stream), kFn);
}

absl::Status RouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids, float* weights,
                        cudaStream_t stream) {
  constexpr absl::string_view kFn = "RouterTopK";
  if (num_tokens < 0) return Invalid(kFn, absl::StrCat("negative num_tokens ", num_tokens));
  if (num_experts < 1 || k < 1 || k > num_experts || k > kMaxRouterK) {
    return Invalid(kFn, absl::StrCat("need 1 <= k <= min(num_experts, ", kMaxRouterK, "), got k ", k, " of ",
                                     num_experts, " experts"));
  }
  if (num_tokens == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"logits", logits}, {"ids", ids}, {"weights", weights}}));
  return Launched(internal::LaunchRouterTopK(logits, num_tokens, num_experts, k, ids, weights, stream), kFn);
}

absl::Status ArgmaxRows(const float* logits, int64_t num_rows, int64_t vocab, int32_t* ids, cudaStream_t stream) {
  constexpr absl::string_view kFn = "ArgmaxRows";
  if (num_rows < 0 || num_rows > kMaxGridX) return Invalid(kFn, absl::StrCat("num_rows ", num_rows, " out of range"));
  if (vocab < 1 || vocab > std::numeric_limits<int32_t>::max()) {
    return Invalid(kFn, absl::StrCat("vocab must be in [1, 2^31), got ", vocab));
  }
  if (num_rows == 0) return absl::OkStatus();
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"logits", logits}, {"ids", ids}}));
  return Launched(internal::LaunchArgmaxRows(logits, num_rows, vocab, ids, stream), kFn);
}

absl::Status LightningDecode(const LightningDecodeParams& p, cudaStream_t stream) {
  constexpr absl::string_view kFn = "LightningDecode";
  const int N = p.shape.num_heads, D = p.shape.head_dim;
  if (N < 1 || D < 1 || D > internal::kMaxLightningHeadDim) {
    return Invalid(kFn, absl::StrCat("need num_heads >= 1 and 1 <= head_dim <= ", internal::kMaxLightningHeadDim,
                                     ", got ", N, " x ", D));
  }
  if (p.num_seqs < 0) return Invalid(kFn, absl::StrCat("negative num_seqs ", p.num_seqs));
  if (p.num_seqs == 0) return absl::OkStatus();
  if (p.num_slots < 1) return Invalid(kFn, absl::StrCat("num_slots must be >= 1, got ", p.num_slots));
  if (p.num_seqs * N > kMaxGridX) return Invalid(kFn, absl::StrCat(p.num_seqs, " sequences x ", N, " heads is too many"));
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"shape.slopes", p.shape.slopes}, {"qkv", p.qkv}, {"state_pool", p.state_pool},
                                    {"slots", p.slots}, {"out", p.out}}));
  const internal::LightningDecodeArgs args{N, D, p.shape.slopes, p.qkv, p.num_seqs, p.state_pool,
                                           p.num_slots, p.slots, p.out};
  return Launched(internal::LaunchLightningDecode(args, stream), kFn);
}

absl::Status LightningPrefill(const LightningShape& shape, const float* qkv, int64_t n, float* state, float* out,
                              cudaStream_t stream) {
  constexpr absl::string_view kFn = "LightningPrefill";
  const int N = shape.num_heads, D = shape.head_dim;
  if (N < 1 || D < 1 || D > internal::kMaxLightningHeadDim) {
    return Invalid(kFn, absl::StrCat("need num_heads >= 1 and 1 <= head_dim <= ", internal::kMaxLightningHeadDim,
                                     ", got ", N, " x ", D));
  }
  if (n < 0) return Invalid(kFn, absl::StrCat("negative n ", n));
  if (n == 0) return absl::OkStatus();
  if (internal::LightningPrefillBlocks(N, D) > kMaxGridX) return Invalid(kFn, absl::StrCat(N, " heads is too many"));
  MMX_RETURN_IF_ERROR(
      NonNull(kFn, {{"shape.slopes", shape.slopes}, {"qkv", qkv}, {"state", state}, {"out", out}}));
  const internal::LightningPrefillArgs args{N, D, shape.slopes, qkv, n, state, out};
  return Launched(internal::LaunchLightningPrefill(args, stream), kFn);
}

absl::Status LightningPrefillBlocked(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                                     float* out, cudaStream_t stream) {
  constexpr absl::string_view kFn = "LightningPrefillBlocked";
  const int N = shape.num_heads, D = shape.head_dim;
  if (N < 1 || D < 1) {
    return Invalid(kFn, absl::StrCat("need num_heads >= 1 and head_dim >= 1, got ", N, " x ", D));
  }
  if (!internal::LightningPrefillBlockedSupports(D)) {
    return absl::UnimplementedError(absl::StrCat(
        kFn, ": the tensor-core kernel is built for head_dim 64 and 128, got ", D,
        "; LightningPrefill (CUDA cores, fp32) takes any head_dim up to ", internal::kMaxLightningHeadDim));
  }
  if (n < 0) return Invalid(kFn, absl::StrCat("negative n ", n));
  if (n == 0) return absl::OkStatus();
  if (internal::LightningPrefillBlockedBlocks(N, D) > kMaxGridX) {
    return Invalid(kFn, absl::StrCat(N, " heads is too many"));
  }
  MMX_RETURN_IF_ERROR(
      NonNull(kFn, {{"shape.slopes", shape.slopes}, {"qkv", qkv}, {"state", state}, {"out", out}}));
  int device = 0;
  MMX_CUDA_RETURN_IF_ERROR(cudaGetDevice(&device));
  MMX_ASSIGN_OR_RETURN(const auto capability, ComputeCapability(device));
  const auto [major, minor] = capability;
  if (major < 8) {
    return absl::UnimplementedError(absl::StrCat(kFn, ": bf16 tensor cores need compute capability 8.0 or newer, cuda:",
                                                 device, " is ", major, ".", minor, "; use LightningPrefill"));
  }
  const internal::LightningPrefillArgs args{N, D, shape.slopes, qkv, n, state, out};
  return Launched(internal::LaunchLightningPrefillBlocked(args, stream), kFn);
}

namespace {

absl::Status AttentionPrefill(absl::string_view kFn, const AttentionShape& shape, const float* q, int64_t n,
                              const float* k, const float* v, const PagedKv* paged, int64_t total_len, float* out,
                              cudaStream_t stream) {
  MMX_RETURN_IF_ERROR(CheckAttentionShape(kFn, shape));
  if (n < 0) return Invalid(kFn, absl::StrCat("negative n ", n));
  if (n == 0) return absl::OkStatus();
  if (total_len < n) {
    return Invalid(kFn, absl::StrCat("total_len (", total_len, ") must count the ", n,
                                     " new rows too, so be >= n"));
  }
  if (internal::AttentionPrefillRowTiles(n) > kMaxGridX) return Invalid(kFn, absl::StrCat("n ", n, " is too large"));
  if (internal::AttentionPrefillHeadChunks(shape.num_heads, shape.num_kv_heads) > kMaxGridYZ) {
    return Invalid(kFn, "too many query heads per KV head");
  }
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"q", q}, {"out", out}}));
  MMX_ASSIGN_OR_RETURN(const internal::KvRows rows, CheckKv(kFn, k, v, paged));
  const internal::AttentionPrefillArgs args{shape.num_heads, shape.num_kv_heads, shape.head_dim, shape.scale, q, n,
                                            rows, total_len, out};
  return Launched(internal::LaunchAttentionPrefill(args, stream), kFn);
}

}  // namespace

absl::Status CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k, const float* v,
                             int64_t total_len, float* out, cudaStream_t stream) {
  return AttentionPrefill("CausalAttention", shape, q, n, k, v, nullptr, total_len, out, stream);
}

absl::Status CausalAttentionPaged(const AttentionShape& shape, const float* q, int64_t n, const PagedKv& kv,
                                  int64_t total_len, float* out, cudaStream_t stream) {
  return AttentionPrefill("CausalAttentionPaged", shape, q, n, nullptr, nullptr, &kv, total_len, out, stream);
}

size_t CausalAttentionDecodeWorkspaceBytes(const AttentionShape& shape, int64_t total_len) {
  if (shape.num_heads < 1 || shape.head_dim < 1 || total_len < 1) return 0;
  return internal::AttentionWorkspaceFloats(shape.num_heads, shape.head_dim, total_len) * sizeof(float);
}

absl::Status CausalAttentionDecode(const CausalAttentionDecodeParams& p, cudaStream_t stream) {
  constexpr absl::string_view kFn = "CausalAttentionDecode";
  const AttentionShape& s = p.shape;
  MMX_RETURN_IF_ERROR(CheckAttentionShape(kFn, s));
  if (p.total_len < 1) return Invalid(kFn, absl::StrCat("total_len must be >= 1 (it counts the new token), got ",
                                                        p.total_len));
  MMX_RETURN_IF_ERROR(NonNull(kFn, {{"q", p.q}, {"out", p.out}}));
  MMX_ASSIGN_OR_RETURN(const internal::KvRows rows, CheckKv(kFn, p.k, p.v, &p.paged));
  const size_t need = CausalAttentionDecodeWorkspaceBytes(s, p.total_len);
  if (p.workspace == nullptr || p.workspace_bytes < need) {
    return Invalid(kFn, absl::StrCat("workspace of ", p.workspace_bytes, " bytes is smaller than the ", need,
                                     " bytes CausalAttentionDecodeWorkspaceBytes() asks for"));
  }
  const internal::AttentionDecodeArgs args{s.num_heads, s.num_kv_heads, s.head_dim, s.scale, p.q, rows,
                                           p.total_len, p.out, static_cast<float*>(p.workspace)};
  return Launched(internal::LaunchAttentionDecode(args, stream), kFn);
}

}  // namespace mmx::kernels::cuda
