// Causal softmax attention for one decode query against a KV cache of total_len keys (GQA,
// fp32), split over the keys (flash-decoding):
//
// AttentionSplitKernel, grid (split, KV head, chunk of <= kMaxGroup query heads): each warp
// walks tiles of 32 keys of its split's range. Per tile it stages K [32, D] in shared memory
// (coalesced loads, rows padded to an odd stride so lane j reading row j is conflict-free),
// computes lane j's scores q_g . k_j for every query head g of the chunk (q broadcast from
// shared memory as float4), updates the running max / sum per head (online softmax, the CPU's
// exp(score*scale - max) form), and adds p V with lanes over the head dimension (V rows read
// coalesced straight from global memory). Every K and V element is read once per chunk of
// query heads, i.e. once at the model's GQA group of 8. Each warp writes its partial
// (max, sum, acc[D]) per head to the workspace.
//
// AttentionCombineKernel, one block per query head: rescales the partials to the global max
// and divides by the total sum.
#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/attention_tile.cuh"
#include "kernels/cuda/launch.h"
#include "kernels/cuda/reduce.cuh"

namespace mmx::kernels::cuda::internal {
namespace {

constexpr int kMaxGroup = kAttentionMaxGroup;  // query heads per block, held in registers per lane
constexpr int kWarps = kAttentionWarpsPerBlock;
constexpr int kTile = static_cast<int>(kAttentionKeysPerWarpTile);
static_assert(kTile == kAttentionTileKeys, "lane j owns key j of a tile");
constexpr int kCombineThreads = 128;

// How the keys are split, computed once on the host (launch.h's functions are host-only).
struct SplitPlan {
  int64_t keys_per_split;
  int64_t num_partials;  // splits * kWarps
};

__host__ __device__ inline int64_t Min64(int64_t a, int64_t b) { return a < b ? a : b; }

__host__ __device__ inline int PaddedDim(int head_dim) { return (head_dim + 3) / 4 * 4; }

// Shared memory floats: q [kMaxGroup, dq], then per warp p [kTile, kMaxGroup] and
// K [kTile, dq + 1].
size_t SplitSmemBytes(int head_dim) {
  const int dq = PaddedDim(head_dim);
  return sizeof(float) * (static_cast<size_t>(kMaxGroup) * dq +
                          static_cast<size_t>(kWarps) * kTile * kMaxGroup +
                          static_cast<size_t>(kWarps) * kTile * (dq + 1));
}

// kDPerLane: head-dim elements per lane in the P V step (D <= 32 * kDPerLane). T: the cache's
// element, float or uint16_t (bf16).
template <int kDPerLane, class T>
__global__ void __launch_bounds__(kWarps * kWarpSize) AttentionSplitKernel(AttentionDecodeArgs a, SplitPlan plan) {
  extern __shared__ __align__(16) float smem[];  // q_s and p_s are read as float4
  const int D = a.head_dim, dq = PaddedDim(D);
  const int lane = threadIdx.x % kWarpSize, warp = threadIdx.x / kWarpSize;
  const int split = blockIdx.x, kvh = blockIdx.y, chunk = blockIdx.z;
  const int group = a.num_heads / a.num_kv_heads;
  const int head0 = kvh * group + chunk * kMaxGroup;                 // first query head of the block
  const int num_g = min(kMaxGroup, group - chunk * kMaxGroup);      // query heads in the block
  const int64_t kv_stride = static_cast<int64_t>(a.num_kv_heads) * D;

  float* q_s = smem;                                              // [kMaxGroup, dq]
  float* p_s = q_s + kMaxGroup * dq + warp * kTile * kMaxGroup;   // [kTile, kMaxGroup]
  float* k_s = q_s + kMaxGroup * dq + kWarps * kTile * kMaxGroup + warp * kTile * (dq + 1);  // [kTile, dq + 1]
  for (int i = threadIdx.x; i < kMaxGroup * dq; i += blockDim.x) {
    const int g = i / dq, d = i % dq;
    q_s[i] = (g < num_g && d < D) ? a.q[static_cast<int64_t>(head0 + g) * D + d] : 0.f;
  }
  __syncthreads();

  const int64_t key_begin = split * plan.keys_per_split;
  const int64_t key_end = Min64(a.total_len, key_begin + plan.keys_per_split);
  const int64_t head_offset = static_cast<int64_t>(kvh) * D;

  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kDPerLane];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.f;
#pragma unroll
    for (int i = 0; i < kDPerLane; ++i) acc[g][i] = 0.f;
  }

  for (int64_t tile0 = key_begin + warp * kTile; tile0 < key_end; tile0 += kWarps * kTile) {
    const int n_keys = static_cast<int>(Min64(kTile, key_end - tile0));
    // The tile's K and V rows (one page: keys_per_split and tile0 are multiples of the tile).
    const T* k_tile = KvTileRow<T>(a.kv.k_pages, a.kv.k, a.kv.page_rows, tile0, kv_stride, head_offset);
    const T* v_tile = KvTileRow<T>(a.kv.v_pages, a.kv.v, a.kv.page_rows, tile0, kv_stride, head_offset);
    // Stage K: row r of the tile, zero past the last key and in the padding columns.
#pragma unroll 8
    for (int r = 0; r < kTile; ++r) {
#pragma unroll
      for (int i = 0; i < kDPerLane; ++i) {  // dq <= 32 * kDPerLane
        const int d = lane + i * kWarpSize;
        if (d < dq) k_s[r * (dq + 1) + d] = (r < n_keys && d < D) ? KvToFloat(k_tile[r * kv_stride + d]) : 0.f;
      }
    }
    __syncwarp();

    // Scores of lane j's key tile0 + j, the online softmax per head, then p V (attention_tile.cuh).
    float s[kMaxGroup], corr[kMaxGroup];
    ScoreTileKeys(k_s, q_s, dq, num_g, s);
    UpdateOnlineSoftmax(s, n_keys, a.scale, num_g, m, l, corr, p_s);
    __syncwarp();
    AccumulateTilePV<kDPerLane>(v_tile, kv_stride, D, n_keys, num_g, p_s, corr, acc);
    __syncwarp();  // the next tile overwrites k_s and p_s
  }

  // Partial of (split, warp) for each head: ml [partials, N, 2], then acc [partials, N, D].
  const int64_t partial = static_cast<int64_t>(split) * kWarps + warp;
  float* ml = a.workspace;
  float* acc_ws = a.workspace + plan.num_partials * a.num_heads * 2;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g < num_g) {
      const int64_t row = partial * a.num_heads + head0 + g;
      if (lane == 0) {
        ml[row * 2] = m[g];
        ml[row * 2 + 1] = l[g];
      }
#pragma unroll
      for (int i = 0; i < kDPerLane; ++i) {
        const int d = lane + i * kWarpSize;
        if (d < D) acc_ws[row * D + d] = acc[g][i];
      }
    }
  }
}

__global__ void __launch_bounds__(kCombineThreads) AttentionCombineKernel(AttentionDecodeArgs a, SplitPlan plan) {
  extern __shared__ float weight[];  // [num_partials]
  const int h = blockIdx.x, D = a.head_dim;
  const int64_t num_partials = plan.num_partials;
  const float* ml = a.workspace;
  const float* acc_ws = a.workspace + num_partials * a.num_heads * 2;
  float max_m = -INFINITY;
  for (int64_t p = 0; p < num_partials; ++p) max_m = fmaxf(max_m, ml[(p * a.num_heads + h) * 2]);
  for (int64_t p = threadIdx.x; p < num_partials; p += blockDim.x) {
    weight[p] = expf(ml[(p * a.num_heads + h) * 2] - max_m);  // 0 for an empty partial
  }
  __syncthreads();
  float sum = 0.f;
  for (int64_t p = 0; p < num_partials; ++p) sum += weight[p] * ml[(p * a.num_heads + h) * 2 + 1];
  for (int d = threadIdx.x; d < D; d += blockDim.x) {
    float o = 0.f;
    for (int64_t p = 0; p < num_partials; ++p) o = fmaf(weight[p], acc_ws[(p * a.num_heads + h) * D + d], o);
    a.out[static_cast<int64_t>(h) * D + d] = o / sum;
  }
}

template <int kDPerLane, class T>
cudaError_t LaunchSplit(const AttentionDecodeArgs& a, const SplitPlan& plan, cudaStream_t stream) {
  const size_t smem = SplitSmemBytes(a.head_dim);
  if (smem > 48 * 1024) {
    const cudaError_t err = cudaFuncSetAttribute(AttentionSplitKernel<kDPerLane, T>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (err != cudaSuccess) return err;
  }
  const int group = a.num_heads / a.num_kv_heads;
  const dim3 grid(static_cast<unsigned>(AttentionNumSplits(a.total_len)), static_cast<unsigned>(a.num_kv_heads),
                  static_cast<unsigned>((group + kMaxGroup - 1) / kMaxGroup));
  AttentionSplitKernel<kDPerLane, T><<<grid, kWarps * kWarpSize, smem, stream>>>(a, plan);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchAttentionDecode(const AttentionDecodeArgs& a, cudaStream_t stream) {
  const SplitPlan plan{AttentionKeysPerSplit(a.total_len), AttentionNumSplits(a.total_len) * kWarps};
  const bool bf16 = a.kv.k_pages != nullptr && a.kv.bf16;
  const bool narrow = a.head_dim <= 4 * kWarpSize;
  cudaError_t err;
  if (bf16) {
    err = narrow ? LaunchSplit<4, uint16_t>(a, plan, stream) : LaunchSplit<8, uint16_t>(a, plan, stream);
  } else {
    err = narrow ? LaunchSplit<4, float>(a, plan, stream) : LaunchSplit<8, float>(a, plan, stream);
  }
  if (err != cudaSuccess) return err;
  const size_t combine_smem = sizeof(float) * static_cast<size_t>(plan.num_partials);
  AttentionCombineKernel<<<static_cast<unsigned>(a.num_heads), kCombineThreads, combine_smem, stream>>>(a, plan);
  return cudaGetLastError();
}

}  // namespace mmx::kernels::cuda::internal
