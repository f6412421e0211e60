// Row copies: the embedding lookup (EmbedRows) and the MoE dispatch / combine moves of whole
// activation rows (GatherRows, ScaleScatterRows). A block walks whole rows (grid-stride over
// rows), its threads over the columns, so every row is read and written coalesced. Exact: bf16
// and f16 widen to fp32 without rounding, and a scaled row is one fp32 product per element, as
// on the CPU. Indices are not trusted: one outside its range turns into a NaN row (or, for the
// scatter, no write), never an out-of-bounds access.
#include <cstdint>

#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = 65536;

unsigned RowBlocks(int64_t rows) { return static_cast<unsigned>(rows < kMaxBlocks ? rows : kMaxBlocks); }

__device__ __forceinline__ float Nan() { return __int_as_float(0x7fc00000); }

struct Bf16 {
  using T = uint16_t;
  static __device__ __forceinline__ float ToFloat(uint16_t v) { return __uint_as_float(static_cast<uint32_t>(v) << 16); }
};
struct F16 {
  using T = uint16_t;
  static __device__ __forceinline__ float ToFloat(uint16_t v) { return __half2float(__ushort_as_half(v)); }
};
struct F32 {
  using T = float;
  static __device__ __forceinline__ float ToFloat(float v) { return v; }
};

template <class Conv>
__global__ void EmbedRowsKernel(EmbedRowsArgs a) {
  const auto* embed = static_cast<const typename Conv::T*>(a.embed);
  for (int64_t t = blockIdx.x; t < a.num_tokens; t += gridDim.x) {
    const int64_t id = a.ids[t];
    float* dst = a.out + t * a.cols;
    if (id < 0 || id >= a.rows) {  // block-uniform
      for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) dst[c] = Nan();
      continue;
    }
    const typename Conv::T* src = embed + id * a.cols;
    for (int64_t c = threadIdx.x; c < a.cols; c += blockDim.x) dst[c] = Conv::ToFloat(src[c]);
  }
}

__global__ void GatherRowsKernel(const float* src, const int64_t* index, int64_t n, int64_t width, float* dst) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const int64_t from = index[r];
    float* to = dst + r * width;
    if (from < 0) {
      for (int64_t c = threadIdx.x; c < width; c += blockDim.x) to[c] = Nan();
      continue;
    }
    const float* row = src + from * width;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) to[c] = row[c];
  }
}

__global__ void ScaleScatterRowsKernel(const float* src, const float* scale, const int64_t* index, int64_t n,
                                       int64_t width, float* dst) {
  for (int64_t r = blockIdx.x; r < n; r += gridDim.x) {
    const int64_t to_row = index[r];
    if (to_row < 0) continue;
    const float s = scale[r];
    const float* from = src + r * width;
    float* to = dst + to_row * width;
    for (int64_t c = threadIdx.x; c < width; c += blockDim.x) to[c] = s * from[c];
  }
}

}  // namespace

cudaError_t LaunchEmbedRows(const EmbedRowsArgs& a, cudaStream_t stream) {
  const unsigned blocks = RowBlocks(a.num_tokens);
  switch (a.dtype) {
    case EmbedDType::kBf16: EmbedRowsKernel<Bf16><<<blocks, kThreads, 0, stream>>>(a); break;
    case EmbedDType::kF16: EmbedRowsKernel<F16><<<blocks, kThreads, 0, stream>>>(a); break;
    case EmbedDType::kF32: EmbedRowsKernel<F32><<<blocks, kThreads, 0, stream>>>(a); break;
  }
  return cudaGetLastError();
}

cudaError_t LaunchGatherRows(const float* src, const int64_t* index, int64_t n, int64_t width, float* dst,
                             cudaStream_t stream) {
  GatherRowsKernel<<<RowBlocks(n), kThreads, 0, stream>>>(src, index, n, width, dst);
  return cudaGetLastError();
}

cudaError_t LaunchScaleScatterRows(const float* src, const float* scale, const int64_t* index, int64_t n,
                                   int64_t width, float* dst, cudaStream_t stream) {
  ScaleScatterRowsKernel<<<RowBlocks(n), kThreads, 0, stream>>>(src, scale, index, n, width, dst);
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
