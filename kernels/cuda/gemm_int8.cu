// GEMV / small-batch GEMM with weight-only int8 weights (per-output-row scales, the CPU's format:
// model/int8_experts.h) and fp32 activations, fp32 accumulation: y[t, r] = scale[r] *
// sum_i x[t, i] * q[r, i]. Memory-bound like the bf16 GEMV (gemm.cu), at half its bytes.
//
// GemvInt8Vec16: one warp owns kRows consecutive output rows. Each lane reads 16-byte chunks
// (16 int8 columns) of those rows, lane-interleaved so a warp reads 512 contiguous bytes of every
// row per step, and the matching 64 bytes of each token's activations (read-only cache). Each
// weight chunk is widened once and used for every token of the tile (up to 32 in registers), so
// a call of up to kMaxGemvInt8Tokens tokens reads the weights once. A butterfly shuffle sums the
// lanes' partials; the row's scale multiplies the sum.
//
// GemvInt8Scalar: any alignment and column count (one warp per row, 1-byte loads).
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kWarpsPerBlock = 4;
constexpr int kThreads = kWarpsPerBlock * kWarpSize;

// acc += dot(x[0..4), the 4 int8 of `q`) with x one float4.
__device__ __forceinline__ float Dot4(float4 a, uint32_t q, float acc) {
  acc = fmaf(a.x, static_cast<float>(static_cast<int8_t>(q & 0xff)), acc);
  acc = fmaf(a.y, static_cast<float>(static_cast<int8_t>((q >> 8) & 0xff)), acc);
  acc = fmaf(a.z, static_cast<float>(static_cast<int8_t>((q >> 16) & 0xff)), acc);
  acc = fmaf(a.w, static_cast<float>(static_cast<int8_t>(q >> 24)), acc);
  return acc;
}

// kMaxT: register tile of tokens; num_tokens <= kMaxT. kRows: output rows per warp.
template <int kMaxT, int kRows>
__global__ void __launch_bounds__(kThreads)
    GemvInt8Vec16(const float* __restrict__ x, int num_tokens, const int8_t* __restrict__ w,
                  const float* __restrict__ scales, int64_t rows, int64_t cols, float* __restrict__ y) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t row0 = (static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize) * kRows;
  if (row0 >= rows) return;  // the whole warp leaves together
  const int64_t num_rows = rows - row0 < kRows ? rows - row0 : kRows;
  const int64_t chunks = cols / 16;
  const uint4* wc = reinterpret_cast<const uint4*>(w) + row0 * chunks;
  const float4* xc = reinterpret_cast<const float4*>(x);  // chunk c of token t: xc[4 * (t * chunks + c)]
  float acc[kRows][kMaxT];
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) acc[r][t] = 0.f;

  for (int64_t c = lane; c < chunks; c += kWarpSize) {
    uint4 wv[kRows];
#pragma unroll
    for (int r = 0; r < kRows; ++r) wv[r] = r < num_rows ? __ldg(wc + r * chunks + c) : make_uint4(0, 0, 0, 0);
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) {
      if (t < num_tokens) {
        const float4* xt = xc + 4 * (t * chunks + c);
        const float4 a = __ldg(xt), b = __ldg(xt + 1), d = __ldg(xt + 2), e = __ldg(xt + 3);
#pragma unroll
        for (int r = 0; r < kRows; ++r) {
          float s = acc[r][t];
          s = Dot4(a, wv[r].x, s);
          s = Dot4(b, wv[r].y, s);
          s = Dot4(d, wv[r].z, s);
          s = Dot4(e, wv[r].w, s);
          acc[r][t] = s;
        }
      }
    }
  }
#pragma unroll
  for (int r = 0; r < kRows; ++r)
#pragma unroll
    for (int t = 0; t < kMaxT; ++t) acc[r][t] = WarpSum(acc[r][t]);
  if (lane == 0) {
#pragma unroll
    for (int r = 0; r < kRows; ++r)
#pragma unroll
      for (int t = 0; t < kMaxT; ++t)
        if (r < num_rows && t < num_tokens) y[t * rows + row0 + r] = scales[row0 + r] * acc[r][t];
  }
}

__global__ void __launch_bounds__(kThreads)
    GemvInt8Scalar(const float* __restrict__ x, int num_tokens, const int8_t* __restrict__ w,
                   const float* __restrict__ scales, int64_t rows, int64_t cols, float* __restrict__ y) {
  const int lane = threadIdx.x % kWarpSize;
  const int64_t row = static_cast<int64_t>(blockIdx.x) * kWarpsPerBlock + threadIdx.x / kWarpSize;
  if (row >= rows) return;
  const int8_t* wr = w + row * cols;
  for (int t0 = 0; t0 < num_tokens; t0 += 8) {  // 8 tokens in registers per pass over the row
    float acc[8];
#pragma unroll
    for (int t = 0; t < 8; ++t) acc[t] = 0.f;
    for (int64_t i = lane; i < cols; i += kWarpSize) {
      const float wi = static_cast<float>(wr[i]);
#pragma unroll
      for (int t = 0; t < 8; ++t)
        if (t0 + t < num_tokens) acc[t] = fmaf(x[(t0 + t) * cols + i], wi, acc[t]);
    }
#pragma unroll
    for (int t = 0; t < 8; ++t) {
      const float sum = WarpSum(acc[t]);
      if (lane == 0 && t0 + t < num_tokens) y[(t0 + t) * rows + row] = scales[row] * sum;
    }
  }
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

unsigned BlocksFor(int64_t units, int64_t per_block) {
  return static_cast<unsigned>((units + per_block - 1) / per_block);
}

template <int kMaxT, int kRows>
void LaunchVec16(const GemvInt8Args& a, cudaStream_t stream) {
  GemvInt8Vec16<kMaxT, kRows><<<BlocksFor(a.rows, kRows * kWarpsPerBlock), kThreads, 0, stream>>>(
      a.x, a.num_tokens, a.w, a.scales, a.rows, a.cols, a.y);
}

}  // namespace

cudaError_t LaunchGemvInt8(const GemvInt8Args& a, cudaStream_t stream) {
  if (a.cols % 16 != 0 || !Aligned16(a.w) || !Aligned16(a.x)) {
    GemvInt8Scalar<<<BlocksFor(a.rows, kWarpsPerBlock), kThreads, 0, stream>>>(a.x, a.num_tokens, a.w, a.scales,
                                                                               a.rows, a.cols, a.y);
    return cudaGetLastError();
  }
  // Rows per warp shrink as the token tile grows: at most 64 accumulators per lane.
  if (a.num_tokens <= 1) {
    LaunchVec16<1, 4>(a, stream);
  } else if (a.num_tokens <= 2) {
    LaunchVec16<2, 4>(a, stream);
  } else if (a.num_tokens <= 4) {
    LaunchVec16<4, 4>(a, stream);
  } else if (a.num_tokens <= 8) {
    LaunchVec16<8, 4>(a, stream);
  } else if (a.num_tokens <= 16) {
    LaunchVec16<16, 2>(a, stream);
  } else {
    LaunchVec16<kMaxGemvInt8Tokens, 2>(a, stream);
  }
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
