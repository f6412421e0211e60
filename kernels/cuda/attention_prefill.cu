// Causal softmax attention for n new queries of one sequence against its KV cache (GQA, fp32),
// the prefill / chunked-prefill counterpart of attention.cu's decode. No workspace: each query
// row keeps its own online softmax from the first key to its last.
//
// Grid (tile of 4 query rows, KV head, chunk of <= 8 query heads of its GQA group); warp w owns
// query row 4 * tile + w, for every head of the chunk. The block walks tiles of 32 keys up to
// the last key its last row sees. Per tile it stages K [32, D] in shared memory once for its
// four rows (coalesced loads, rows padded to an odd stride so lane j reading row j is
// conflict-free); then, in each warp, lane j scores key j against the row's queries (q
// broadcast from shared memory as float4), keys past the row's causal limit are masked, the
// running max / sum per head are updated (the CPU's exp(score * scale - max) form), and p V is
// added with lanes over the head dimension (V rows read coalesced from global memory; the
// block's four warps read the same rows, so three of the four reads hit L1). Tiles run from the
// last query rows to the first, the longest rows first.
//
// NOTE: every K and V element is read once per 4 query rows (per block), from L2 for all but the
// first: fine for a first version. A FlashAttention-style kernel (query tiles on tensor cores)
// is future work.
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/attention_tile.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kRowsPerBlock = static_cast<int>(kAttentionPrefillRowsPerBlock);  // one warp each
constexpr int kMaxGroup = kAttentionPrefillMaxGroup;  // query heads per block, in registers per lane
constexpr int kTile = kAttentionTileKeys;             // lane j owns key j of a tile
static_assert(kMaxGroup == kAttentionMaxGroup, "attention_tile.cuh holds kAttentionMaxGroup heads per warp");

__host__ __device__ inline int PaddedDim(int head_dim) { return (head_dim + 3) / 4 * 4; }

// Shared memory floats: q [kRowsPerBlock, kMaxGroup, dq], p [kRowsPerBlock, kTile, kMaxGroup],
// then K [kTile, dq + 1].
size_t SmemBytes(int head_dim) {
  const size_t dq = static_cast<size_t>(PaddedDim(head_dim));
  return sizeof(float) * (kRowsPerBlock * kMaxGroup * dq + kRowsPerBlock * kTile * kMaxGroup + kTile * (dq + 1));
}

// kDPerLane: head-dim elements per lane in the p V step (D <= 32 * kDPerLane). T: the cache's
// element, float or uint16_t (bf16).
template <int kDPerLane, class T>
__global__ void __launch_bounds__(kRowsPerBlock * kWarpSize) AttentionPrefillKernel(AttentionPrefillArgs a) {
  extern __shared__ __align__(16) float smem[];  // q_s and p_s are read as float4
  const int D = a.head_dim, dq = PaddedDim(D);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int64_t row_tile = static_cast<int64_t>(gridDim.x) - 1 - blockIdx.x;  // longest rows first
  const int kvh = blockIdx.y, chunk = blockIdx.z;
  const int group = a.num_heads / a.num_kv_heads;
  const int head0 = kvh * group + chunk * kMaxGroup;             // first query head of the block
  const int num_g = min(kMaxGroup, group - chunk * kMaxGroup);  // query heads in the block
  const int64_t q_stride = static_cast<int64_t>(a.num_heads) * D;
  const int64_t kv_stride = static_cast<int64_t>(a.num_kv_heads) * D;

  const int64_t row0 = row_tile * kRowsPerBlock;
  const int64_t rows = a.n - row0 < kRowsPerBlock ? a.n - row0 : kRowsPerBlock;  // >= 1
  const int64_t first_pos = a.total_len - a.n;  // position of query row 0
  const int64_t row = row0 + warp;
  const bool has_row = warp < rows;             // warp-uniform
  const int64_t row_keys = first_pos + row + 1;  // keys [0, row_keys) for this warp's row
  const int64_t block_keys = first_pos + row0 + rows;

  float* q_s = smem;                                                       // [rows, kMaxGroup, dq]
  float* p_s = q_s + kRowsPerBlock * kMaxGroup * dq + warp * kTile * kMaxGroup;  // this warp's [kTile, kMaxGroup]
  float* k_s = q_s + kRowsPerBlock * kMaxGroup * dq + kRowsPerBlock * kTile * kMaxGroup;  // [kTile, dq + 1]
  for (int idx = threadIdx.x; idx < kRowsPerBlock * kMaxGroup * dq; idx += blockDim.x) {
    const int w = idx / (kMaxGroup * dq), g = idx / dq % kMaxGroup, d = idx % dq;
    q_s[idx] = (w < rows && g < num_g && d < D) ? a.q[(row0 + w) * q_stride + static_cast<int64_t>(head0 + g) * D + d]
                                                : 0.f;
  }

  const int64_t head_offset = static_cast<int64_t>(kvh) * D;
  const float* q_w = q_s + warp * kMaxGroup * dq;  // this warp's queries [kMaxGroup, dq]

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kDPerLane];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < kDPerLane; ++i) acc[g][i] = 0.f;
  }

  for (int64_t tile0 = 0; tile0 < block_keys; tile0 += kTile) {
    const int n_tile = static_cast<int>(block_keys - tile0 < kTile ? block_keys - tile0 : kTile);
    __syncthreads();  // q_s is written (first tile); no warp still reads the previous tile's k_s
    // The tile's K and V rows (one page: tile0 is a multiple of the tile, pages of whole tiles).
    const T* k_tile = KvTileRow<T>(a.kv.k_pages, a.kv.k, a.kv.page_rows, tile0, kv_stride, head_offset);
    const T* v_tile = KvTileRow<T>(a.kv.v_pages, a.kv.v, a.kv.page_rows, tile0, kv_stride, head_offset);
    for (int idx = threadIdx.x; idx < kTile * dq; idx += blockDim.x) {
      const int r = idx / dq, d = idx % dq;
      k_s[r * (dq + 1) + d] = (r < n_tile && d < D) ? KvToFloat(k_tile[r * kv_stride + d]) : 0.f;
    }
    __syncthreads();
    // Keys of this tile the warp's row sees: >= 1 on the first tile for every row, and a row
    // with none (the tail of the block's last tile) skips the tile.
    const int64_t visible = row_keys - tile0;
    if (!has_row || visible <= 0) continue;
    const int n_keys = static_cast<int>(visible < kTile ? visible : kTile);

    // Scores of lane j's key tile0 + j, the online softmax per head, then p V (attention_tile.cuh).
    float s[kMaxGroup], corr[kMaxGroup];
    ScoreTileKeys(k_s, q_w, dq, num_g, s);
    UpdateOnlineSoftmax(s, n_keys, a.scale, num_g, m, l, corr, p_s);
    __syncwarp();
    AccumulateTilePV<kDPerLane>(v_tile, kv_stride, D, n_keys, num_g, p_s, corr, acc);
    __syncwarp();  // the next tile overwrites p_s
  }

  if (!has_row) return;
  float* out = a.out + row * q_stride + static_cast<int64_t>(head0) * D;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < num_g) {
      const float inv = 1.f / l[g];
#pragma unroll
      for (int i = 0; i < kDPerLane; ++i) {
        const int d = lane + i * kWarpSize;
        if (d < D) out[g * D + d] = acc[g][i] * inv;
      }
    }
  }
}

template <int kDPerLane, class T>
cudaError_t Launch(const AttentionPrefillArgs& a, cudaStream_t stream) {
  const size_t smem = SmemBytes(a.head_dim);
  if (smem > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(AttentionPrefillKernel<kDPerLane, T>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  const dim3 grid(static_cast<unsigned>(AttentionPrefillRowTiles(a.n)), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>(AttentionPrefillHeadChunks(a.num_heads, a.num_kv_heads)));
  AttentionPrefillKernel<kDPerLane, T><<<grid, kRowsPerBlock * kWarpSize, smem, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchAttentionPrefill(const AttentionPrefillArgs& a, cudaStream_t stream) {
  const bool bf16 = a.kv.k_pages != nullptr && a.kv.bf16;
  const bool narrow = a.head_dim <= 4 * kWarpSize;
  return bf16 ? (narrow ? Launch<4, uint16_t>(a, stream) : Launch<8, uint16_t>(a, stream))
              : (narrow ? Launch<4, float>(a, stream) : Launch<8, float>(a, stream));
}

}  // namespace mmx::kernels::cuda::internal
