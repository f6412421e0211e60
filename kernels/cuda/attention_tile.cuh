// The key-tile step that attention.cu (decode, split over the keys) and attention_prefill.cu
// (n queries of one sequence) share. One warp, a tile of up to kAttentionTileKeys keys staged in
// shared memory (lane j owns key j), up to kAttentionMaxGroup query heads of one GQA group. Per
// tile a kernel calls, from every lane of the warp:
//
//   ScoreTileKeys        lane j's scores q_g . k_j, every head g (q broadcast as float4);
//   UpdateOnlineSoftmax  each head's running max / sum (the CPU's exp(score * scale - max) form),
//                        p of lane j's key to p_s row j, and corr, the factor that rescales acc;
//   __syncwarp()         p_s complete;
//   AccumulateTilePV     acc = acc * corr + sum_j p_j v_j, lanes over the head dimension.
//
// The kernels keep what differs: where q lives, how K is staged, how many keys of the tile the
// warp's query sees, and the barriers around the tile. Device code only; include from .cu files.
//
// NOTE: both kernels' results depend bit for bit on the operation order here (the fmaf chain per
// 4 dims, the expf calls, the p V fmaf order).
#pragma once

#include <cstdint>

#include <cuda_runtime.h>

#include "kernels/cuda/reduce.cuh"

namespace mmx::kernels::cuda::internal {

constexpr int kAttentionTileKeys = kWarpSize;  // lane j owns key j of a tile
constexpr int kAttentionMaxGroup = 8;          // query heads per warp, in registers per lane; p is read as two float4

// s[g] = q_g . k_j for lane j's key and g < num_g (s[g] = 0 for the others).
// k_s: [kAttentionTileKeys, dq + 1] in shared memory, zero past the tile's last key and in the
// padding columns. q: [kAttentionMaxGroup, dq], 16-byte aligned, zero in the padding columns.
// dq: the head dimension rounded up to a multiple of 4.
__device__ __forceinline__ void ScoreTileKeys(const float* k_s, const float* q, int dq, int num_g,
                                              float (&s)[kAttentionMaxGroup]) {
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int g = 0; g < kAttentionMaxGroup; ++g) s[g] = 0.f;
  const float* kj = k_s + lane * (dq + 1);
  for (int d = 0; d < dq; d += 4) {
    const float k0 = kj[d], k1 = kj[d + 1], k2 = kj[d + 2], k3 = kj[d + 3];
#pragma unroll
    for (int g = 0; g < kAttentionMaxGroup; ++g) {
      if (g < num_g) {
        const float4 q4 = *reinterpret_cast<const float4*>(q + g * dq + d);
        s[g] = fmaf(q4.x, k0, s[g]);
        s[g] = fmaf(q4.y, k1, s[g]);
        s[g] = fmaf(q4.z, k2, s[g]);
        s[g] = fmaf(q4.w, k3, s[g]);
      }
    }
  }
}

// Online softmax over the tile for each head g < num_g: the warp sees keys [0, n_keys) of the
// tile, 1 <= n_keys <= kAttentionTileKeys, so the new max m[g] is finite. Updates m[g] and l[g],
// sets corr[g] = exp(old max - new max) (0 on the first tile; 1 for g >= num_g) and writes p of
// lane j's key to p_s[j * kAttentionMaxGroup + g]. p_s: [kAttentionTileKeys, kAttentionMaxGroup],
// the warp's own, in shared memory.
__device__ __forceinline__ void UpdateOnlineSoftmax(const float (&s)[kAttentionMaxGroup], int n_keys, float scale,
                                                    int num_g, float (&m)[kAttentionMaxGroup],
                                                    float (&l)[kAttentionMaxGroup],
                                                    float (&corr)[kAttentionMaxGroup], float* p_s) {
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int g = 0; g < kAttentionMaxGroup; ++g) {
    corr[g] = 1.f;
    if (g < num_g) {
      const float score = lane < n_keys ? s[g] * scale : -INFINITY;
      const float m_new = fmaxf(m[g], WarpMax(score));
      corr[g] = expf(m[g] - m_new);  // 0 on the first tile (m = -inf)
      const float p = expf(score - m_new);
      l[g] = l[g] * corr[g] + WarpSum(p);
      m[g] = m_new;
      p_s[lane * kAttentionMaxGroup + g] = p;
    }
  }
}

// A KV element as fp32: fp32 as is, bf16 (its bits as uint16_t) widened exactly.
__device__ __forceinline__ float KvToFloat(float x) { return x; }
__device__ __forceinline__ float KvToFloat(uint16_t x) { return __uint_as_float(static_cast<unsigned>(x) << 16); }

// Element `offset` of the KV row `tile0` (the first key of a tile: the tile's rows follow it at
// kv_stride, within one page). T: float, or uint16_t for bf16 pages.
template <class T>
__device__ __forceinline__ const T* KvTileRow(const void* const* pages, const float* contiguous, int64_t page_rows,
                                              int64_t tile0, int64_t kv_stride, int64_t offset) {
  if (pages == nullptr) return reinterpret_cast<const T*>(contiguous + tile0 * kv_stride + offset);
  return static_cast<const T*>(pages[tile0 / page_rows]) + (tile0 % page_rows) * kv_stride + offset;
}

// acc[g] = acc[g] * corr[g] + sum_r p_s[r][g] v_r over the keys r < n_keys, lane's head-dim
// elements d = lane + 32 i < head_dim. v: the V row of the tile's first key, row r at
// v + r * kv_stride (global memory, fp32 or bf16 as T). p_s as UpdateOnlineSoftmax wrote it,
// after a __syncwarp(); 16-byte aligned.
template <int kDPerLane, class T>
__device__ __forceinline__ void AccumulateTilePV(const T* v, int64_t kv_stride, int head_dim, int n_keys,
                                                 int num_g, const float* p_s,
                                                 const float (&corr)[kAttentionMaxGroup],
                                                 float (&acc)[kAttentionMaxGroup][kDPerLane]) {
  const int lane = threadIdx.x % kWarpSize;
#pragma unroll
  for (int g = 0; g < kAttentionMaxGroup; ++g)
#pragma unroll
    for (int i = 0; i < kDPerLane; ++i) acc[g][i] *= corr[g];
#pragma unroll 4
  for (int r = 0; r < n_keys; ++r) {
    const T* vr = v + r * kv_stride;
    float v_lane[kDPerLane];
#pragma unroll
    for (int i = 0; i < kDPerLane; ++i) {
      const int d = lane + i * kWarpSize;
      v_lane[i] = d < head_dim ? KvToFloat(vr[d]) : 0.f;
    }
    const float4 pa = *reinterpret_cast<const float4*>(p_s + r * kAttentionMaxGroup);
    const float4 pb = *reinterpret_cast<const float4*>(p_s + r * kAttentionMaxGroup + 4);
    const float p[kAttentionMaxGroup] = {pa.x, pa.y, pa.z, pa.w, pb.x, pb.y, pb.z, pb.w};
#pragma unroll
    for (int g = 0; g < kAttentionMaxGroup; ++g)
      if (g < num_g)
#pragma unroll
        for (int i = 0; i < kDPerLane; ++i) acc[g][i] = fmaf(p[g], v_lane[i], acc[g][i]);
  }
}

}  // namespace mmx::kernels::cuda::internal
