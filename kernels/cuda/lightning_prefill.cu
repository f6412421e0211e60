// Lightning attention over n tokens of one sequence (MODEL.md §3.4), by the defining recurrence
// on CUDA cores, token by token:
//   S = lambda * S + k_t^T v_t,   o_t = q_t S       S [D key, D value] fp32, lambda = exp(-slope)
// One block per (head, tile of 32 value columns); warp w of the block owns the state rows
// [16w, 16w + 16) of the tile and lane j its column, so each thread keeps 16 state elements in
// registers for the whole call: the state is read once and written once, however long n is.
// Tokens come in chunks: the block stages the chunk's q and k rows (all D) and its v columns in
// shared memory, each thread runs the recurrence over the chunk with the CPU decode's formula
// fma(k[a], v[b], lambda * S[a][b]) and writes its 16-row partial of each o_t[b], and the
// partials of the warps are summed per (token, column) after one barrier.
//
// Rounding differs from the CPU's block form (kernels.h LightningAttention for n > 1), which
// decays by exp(-s * d) tables: here lambda^d is a product of d roundings of lambda, a relative
// error up to about d * 2^-22 in the weight of a token d steps back (the tests' tolerance).
//
// NOTE: a first version, written to be simple. The work is 5 n D^2 flops per head on CUDA
// cores, sequential in n within a block; the chunked block form on tensor cores (Q K^T, A V,
// K^T V as GEMMs) is future work.
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/launch.h"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kWarp = 32;
constexpr int kRows = kLightningPrefillRowsPerThread;
constexpr int kMaxThreads = kWarp * ((kMaxLightningHeadDim + kRows - 1) / kRows);  // 1024
static_assert(kMaxThreads <= 1024, "one warp per 16 rows of the widest head");
constexpr int kColumnTile = kWarp;
// Tokens per staged chunk: as many as keep shared memory within the default 48 KiB.
constexpr size_t kSmemBudget = 48 * 1024;

int Warps(int head_dim) { return (head_dim + kRows - 1) / kRows; }

// Shared floats for a chunk of `chunk` tokens: q and k [chunk, D], v [chunk, 32] and the
// partial outputs [chunk, warps, 32].
size_t SmemFloats(int head_dim, int chunk) {
  return static_cast<size_t>(chunk) * (2 * head_dim + kColumnTile + Warps(head_dim) * kColumnTile);
}

int ChunkTokens(int head_dim) {
  int chunk = 16;
  while (chunk > 1 && SmemFloats(head_dim, chunk) * sizeof(float) > kSmemBudget) chunk /= 2;
  return chunk;
}

__global__ void __launch_bounds__(kMaxThreads) LightningPrefillKernel(LightningPrefillArgs a, int chunk) {
  extern __shared__ float smem[];
  const int N = a.num_heads, D = a.head_dim;
  const int tiles = (D + kColumnTile - 1) / kColumnTile;
  const int h = static_cast<int>(blockIdx.x / tiles);
  const int col0 = static_cast<int>(blockIdx.x % tiles) * kColumnTile;
  const int lane = threadIdx.x % kWarp, warp = threadIdx.x / kWarp, warps = blockDim.x / kWarp;
  const int col = col0 + lane;
  const bool has_col = col < D;
  const int row0 = warp * kRows;

  float* q_s = smem;                      // [chunk, D]
  float* k_s = q_s + chunk * D;           // [chunk, D]
  float* v_s = k_s + chunk * D;           // [chunk, 32]: columns col0 ..
  float* part = v_s + chunk * kColumnTile;  // [chunk, warps, 32]

  const float lambda = expf(-a.slopes[h]);
  float* S = a.state + static_cast<int64_t>(h) * D * D;
  float s[kRows];
#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int row = row0 + r;
    s[r] = (has_col && row < D) ? S[static_cast<int64_t>(row) * D + col] : 0.f;
  }

  const int64_t qkv_stride = static_cast<int64_t>(N) * 3 * D;
  const int64_t out_stride = static_cast<int64_t>(N) * D;
  const float* qkv_h = a.qkv + static_cast<int64_t>(h) * 3 * D;  // [q | k | v] of head h, token 0
  float* out_h = a.out + static_cast<int64_t>(h) * D;
  for (int64_t t0 = 0; t0 < a.n; t0 += chunk) {
    const int m = static_cast<int>(a.n - t0 < chunk ? a.n - t0 : chunk);
    __syncthreads();  // the previous chunk's reads of q_s, k_s, v_s and part are done
    for (int idx = threadIdx.x; idx < m * D; idx += blockDim.x) {
      const int i = idx / D, d = idx % D;
      const float* row = qkv_h + (t0 + i) * qkv_stride;
      q_s[idx] = row[d];
      k_s[idx] = row[D + d];
    }
    for (int idx = threadIdx.x; idx < m * kColumnTile; idx += blockDim.x) {
      const int i = idx / kColumnTile, c = col0 + idx % kColumnTile;
      v_s[idx] = c < D ? qkv_h[(t0 + i) * qkv_stride + 2 * D + c] : 0.f;
    }
    __syncthreads();

    for (int i = 0; i < m; ++i) {
      const float v = v_s[i * kColumnTile + lane];
      const float* qi = q_s + i * D;
      const float* ki = k_s + i * D;
      float acc = 0.f;
#pragma unroll
      for (int r = 0; r < kRows; ++r) {
        const int row = row0 + r;
        if (row < D) {  // warp-uniform; the broadcast reads of qi, ki are conflict-free
          s[r] = fmaf(ki[row], v, lambda * s[r]);
          acc = fmaf(qi[row], s[r], acc);
        }
      }
      part[(i * warps + warp) * kColumnTile + lane] = acc;
    }
    __syncthreads();

    for (int idx = threadIdx.x; idx < m * kColumnTile; idx += blockDim.x) {
      const int i = idx / kColumnTile, j = idx % kColumnTile;
      if (col0 + j < D) {
        float sum = 0.f;
        for (int w = 0; w < warps; ++w) sum += part[(i * warps + w) * kColumnTile + j];
        out_h[(t0 + i) * out_stride + col0 + j] = sum;
      }
    }
  }

#pragma unroll
  for (int r = 0; r < kRows; ++r) {
    const int row = row0 + r;
    if (has_col && row < D) S[static_cast<int64_t>(row) * D + col] = s[r];
  }
}

}  // namespace

cudaError_t LaunchLightningPrefill(const LightningPrefillArgs& a, cudaStream_t stream) {
  const int chunk = ChunkTokens(a.head_dim);
  const size_t smem = SmemFloats(a.head_dim, chunk) * sizeof(float);
  const unsigned blocks = static_cast<unsigned>(LightningPrefillBlocks(a.num_heads, a.head_dim));
  LightningPrefillKernel<<<blocks, Warps(a.head_dim) * kWarp, smem, stream>>>(a, chunk);
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
