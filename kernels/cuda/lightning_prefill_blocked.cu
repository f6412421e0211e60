// Lightning attention over n tokens of one sequence by the block form of MODEL.md §3.4 on tensor
// cores: bf16 inputs, fp32 accumulation (nvcuda::wmma m16n16k16), for ActivationPrecision::kBf16
// only. Per head and block of m <= B = 64 tokens, with e[d] = expf(-s * d) for d = 0..B in fp32
// (d >= 0 only: nothing can overflow) and Q, K, V the block's [m, D] rows rounded to bf16:
//   A     = bf16((Q K^T) . mask(e[i-j], j <= i))                  intra-block scores   [m, m]
//   O     = diag(e[i+1]) (Q bf16(S0)) + A V                        inter + intra        [m, D]
//   S_new = e[m] S0 + K^T bf16(diag(e[m-1-j]) V)                   state after block    [D, D]
// The state is fp32 throughout (held in the warps' fp32 accumulators during the call, read from
// and written to global memory once each); it is rounded to bf16 only as the input of Q S0.
// Decaying V rather than K in the update is the same product, rounded at another point.
//
// B is fixed at 64 (LightningShape::block_size is ignored): the block's q, k, v, A and the
// state's bf16 copy must fit in shared memory next to each other. Like every block size, it
// changes the rounding only.
//
// Grid: one thread block per (head, 64 value columns). Every product but Q K^T splits along the
// value columns, so a head of D = 128 has two thread blocks that each compute Q K^T (2 B^2 D
// flops per block of tokens) and own half of the state. 8 warps; warp w owns output tiles
// (w / 4, w % 4) and (3 - w / 4, 3 - w % 4) of the [B, 64] block output (16 x 16 tiles), which
// gives every warp 5 tile products of A V and one or two of the causal tiles of Q K^T, and state
// tiles w, w + 8, ... of the [D, 64] state columns.
// NOTE: the code touches fragments only through load/store/mma_sync and a uniform scale, never
// by their register layout: each warp moves a tile between registers and memory through its own
// 16 x 16 fp32 scratch (row scaling, masking, bounds-checked global stores).
//
// The next block's q, k, v rows (fp32) are loaded into registers while the current block's
// products run, so their latency hides behind the tensor-core work.
//
// Resources (ptxas, CUDA 13.0): D = 128 takes 255 registers per thread (32 bytes spilled on
// sm_80, none on sm_90), D = 64 about 200; shared memory 89 KiB (D = 128) or 64 KiB, above the
// default 48 KiB, so the launch opts in. One thread block per SM.
#include <cstdint>
#include <mutex>
#include <set>

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <mma.h>

#include "kernels/cuda/launch.h"

namespace mmx::kernels::cuda::internal {
namespace {

using Bf16 = __nv_bfloat16;

constexpr int kB = kLightningBlockTokens;  // tokens per block
constexpr int kC = kLightningBlockColumns;  // value columns per thread block
constexpr int kWarps = 8;
constexpr int kThreads = 32 * kWarps;
constexpr int kT = 16;             // WMMA tile edge
constexpr int kTilesB = kB / kT;   // 4 token tiles
constexpr int kTilesC = kC / kT;   // 4 value-column tiles
static_assert(kB == kC, "a warp's output tile (ti, tj) and score tile (ti, tj) coincide");
static_assert(2 * kWarps == kTilesB * kTilesC, "two output tiles per warp");
constexpr int kLdScratch = kT + 4;  // fp32; a multiple of 4, as WMMA needs for float

// Shared memory layout (byte offsets) for head dim D. Rows are padded by 16 bytes so that the 8
// rows one fragment load reads fall in distinct banks; every 16-row tile then still starts on the
// 32 bytes WMMA requires.
template <int D>
struct Smem {
  static constexpr int kLdQk = D + 8;  // q, k: [B, D] bf16
  static constexpr int kLdV = kC + 8;  // v, decayed v: [B, 64]; bf16(S0): [D, 64] bf16
  static constexpr int kLdA = kB + 8;  // A: [B, B] bf16
  static constexpr size_t kQ = 0;
  static constexpr size_t kK = kQ + size_t{kB} * kLdQk * sizeof(Bf16);
  static constexpr size_t kV = kK + size_t{kB} * kLdQk * sizeof(Bf16);
  static constexpr size_t kVd = kV + size_t{kB} * kLdV * sizeof(Bf16);
  static constexpr size_t kA = kVd + size_t{kB} * kLdV * sizeof(Bf16);
  static constexpr size_t kS = kA + size_t{kB} * kLdA * sizeof(Bf16);
  static constexpr size_t kScratch = kS + size_t{D} * kLdV * sizeof(Bf16);      // [8][16][20] fp32
  static constexpr size_t kDecay = kScratch + size_t{kWarps} * kT * kLdScratch * sizeof(float);  // [B + 1]
  static constexpr size_t kBytes = kDecay + (kB + 1) * sizeof(float);
  static_assert(kK % 32 == 0 && kV % 32 == 0 && kVd % 32 == 0 && kA % 32 == 0 && kS % 32 == 0 &&
                    kScratch % 32 == 0 && (kT * kLdScratch * sizeof(float)) % 32 == 0,
                "WMMA tiles start on 32 bytes");
  static_assert(kLdQk % 8 == 0 && kLdV % 8 == 0 && kLdA % 8 == 0, "bf16 WMMA leading dimensions");
};

namespace wmma = nvcuda::wmma;
using FragA = wmma::fragment<wmma::matrix_a, kT, kT, kT, Bf16, wmma::row_major>;
using FragACol = wmma::fragment<wmma::matrix_a, kT, kT, kT, Bf16, wmma::col_major>;
using FragB = wmma::fragment<wmma::matrix_b, kT, kT, kT, Bf16, wmma::row_major>;
using FragBCol = wmma::fragment<wmma::matrix_b, kT, kT, kT, Bf16, wmma::col_major>;
using Acc = wmma::fragment<wmma::accumulator, kT, kT, kT, float>;

// The warp's scratch gets tile `acc`; the lanes may read it afterwards.
__device__ __forceinline__ void ToScratch(float* scratch, const Acc& acc) {
  wmma::store_matrix_sync(scratch, acc, kLdScratch, wmma::mem_row_major);
  __syncwarp();
}

// bf16 copy of the warp's state tiles (rows 16 (t / 4), columns 16 (t % 4) of the thread block's
// [D, 64] state columns, t = warp + 8 k) into s_s, the Q S0 operand of the next block.
template <int D, int kTiles>
__device__ __forceinline__ void PublishState(const Acc (&state)[kTiles], float* scratch, Bf16* s_s, int warp,
                                             int lane) {
#pragma unroll
  for (int k = 0; k < kTiles; ++k) {
    const int t = warp + kWarps * k, r0 = (t / kTilesC) * kT, j0 = (t % kTilesC) * kT;
    ToScratch(scratch, state[k]);
#pragma unroll 1
    for (int e = lane; e < kT * kT; e += 32) {
      const int r = e / kT, c = e % kT;
      s_s[(r0 + r) * Smem<D>::kLdV + j0 + c] = __float2bfloat16_rn(scratch[r * kLdScratch + c]);
    }
    __syncwarp();
  }
}

// The block's pieces in shared memory.
template <int D>
struct Shared {
  Bf16* q;       // [B, D]
  Bf16* k;       // [B, D]
  Bf16* v;       // [B, 64]
  Bf16* vd;      // [B, 64]  e[m-1-j] v_j
  Bf16* a;       // [B, B]   masked, decayed scores
  Bf16* s;       // [D, 64]  bf16(S0)
  float* decay;  // [B + 1]
};

// The warp's output tile p: (w / 4, w % 4) or (3 - w / 4, 3 - w % 4).
__device__ __forceinline__ int OutputTileRow(int warp, int p) {
  return p == 0 ? warp / kTilesC : kTilesB - 1 - warp / kTilesC;
}
__device__ __forceinline__ int OutputTileColumn(int warp, int p) {
  return p == 0 ? warp % kTilesC : kTilesC - 1 - warp % kTilesC;
}

// The state's columns c0 .. c0 + 63 (state_h: global [D, D] from column c0) into the warp's
// accumulator tiles t = warp + 8 k, where they stay for the whole call.
template <int D, int kTiles>
__device__ __forceinline__ void LoadState(Acc (&state)[kTiles], const float* state_h, float* scratch, int warp,
                                          int lane) {
#pragma unroll
  for (int k = 0; k < kTiles; ++k) {
    const int t = warp + kWarps * k, r0 = (t / kTilesC) * kT, j0 = (t % kTilesC) * kT;
#pragma unroll 1
    for (int e = lane; e < kT * kT; e += 32) {
      const int r = e / kT, c = e % kT;
      scratch[r * kLdScratch + c] = state_h[static_cast<int64_t>(r0 + r) * D + j0 + c];
    }
    __syncwarp();
    wmma::load_matrix_sync(state[k], scratch, kLdScratch, wmma::mem_row_major);
    __syncwarp();
  }
}

// The inverse of LoadState, at the end of the call.
template <int D, int kTiles>
__device__ __forceinline__ void StoreState(const Acc (&state)[kTiles], float* state_h, float* scratch, int warp,
                                           int lane) {
#pragma unroll
  for (int k = 0; k < kTiles; ++k) {
    const int t = warp + kWarps * k, r0 = (t / kTilesC) * kT, j0 = (t % kTilesC) * kT;
    ToScratch(scratch, state[k]);
#pragma unroll 1
    for (int e = lane; e < kT * kT; e += 32) {
      const int r = e / kT, c = e % kT;
      state_h[static_cast<int64_t>(r0 + r) * D + j0 + c] = scratch[r * kLdScratch + c];
    }
    __syncwarp();
  }
}

// Stages the block's prefetched fp32 rows as bf16 (rows past m are zero: their products vanish),
// with v also decayed by e[m-1-i] for the state update.
template <int D, int kQkLoads, int kVLoads>
__device__ __forceinline__ void StageBlock(const Shared<D>& sh, const float (&q_next)[kQkLoads],
                                           const float (&k_next)[kQkLoads], const float (&v_next)[kVLoads], int m,
                                           int tid) {
#pragma unroll
  for (int it = 0; it < kQkLoads; ++it) {
    const int e = tid + kThreads * it, i = e / D, d = e % D;
    sh.q[i * Smem<D>::kLdQk + d] = __float2bfloat16_rn(q_next[it]);
    sh.k[i * Smem<D>::kLdQk + d] = __float2bfloat16_rn(k_next[it]);
  }
#pragma unroll
  for (int it = 0; it < kVLoads; ++it) {
    const int e = tid + kThreads * it, i = e / kC, c = e % kC;
    sh.v[i * Smem<D>::kLdV + c] = __float2bfloat16_rn(v_next[it]);
    sh.vd[i * Smem<D>::kLdV + c] = __float2bfloat16_rn(i < m ? v_next[it] * sh.decay[m - 1 - i] : 0.f);
  }
}

// Step 1: inter = diag(e[i+1]) Q bf16(S0) for the warp's output tiles, and the causal tiles of
// Q K^T among the same (ti, tj), masked and decayed into A.
template <int D>
__device__ __forceinline__ void InterAndScores(const Shared<D>& sh, Acc (&out)[2], float* scratch, int warp,
                                               int lane, int row_tiles) {
  using L = Smem<D>;
#pragma unroll
  for (int p = 0; p < 2; ++p) {
    const int ti = OutputTileRow(warp, p), tj = OutputTileColumn(warp, p);
    wmma::fill_fragment(out[p], 0.f);
    if (ti >= row_tiles) continue;
    const bool causal = tj <= ti;
    Acc scores;
    wmma::fill_fragment(scores, 0.f);
#pragma unroll
    for (int kd = 0; kd < D / kT; ++kd) {
      FragA qa;
      FragB sb;
      wmma::load_matrix_sync(qa, sh.q + ti * kT * L::kLdQk + kd * kT, L::kLdQk);
      wmma::load_matrix_sync(sb, sh.s + kd * kT * L::kLdV + tj * kT, L::kLdV);
      wmma::mma_sync(out[p], qa, sb, out[p]);
      if (causal) {
        FragBCol kb;  // K^T: element (d, j) is k[j][d]
        wmma::load_matrix_sync(kb, sh.k + tj * kT * L::kLdQk + kd * kT, L::kLdQk);
        wmma::mma_sync(scores, qa, kb, scores);
      }
    }
    // Row i of the inter term decays by e[i + 1].
    ToScratch(scratch, out[p]);
#pragma unroll 1
    for (int e = lane; e < kT * kT; e += 32) scratch[(e / kT) * kLdScratch + e % kT] *= sh.decay[ti * kT + e / kT + 1];
    __syncwarp();
    wmma::load_matrix_sync(out[p], scratch, kLdScratch, wmma::mem_row_major);
    __syncwarp();
    if (causal) {
      ToScratch(scratch, scores);
#pragma unroll 1
      for (int e = lane; e < kT * kT; e += 32) {
        const int i = ti * kT + e / kT, j = tj * kT + e % kT;
        const float x = j <= i ? scratch[(e / kT) * kLdScratch + e % kT] * sh.decay[i - j] : 0.f;
        sh.a[i * L::kLdA + j] = __float2bfloat16_rn(x);
      }
      __syncwarp();
    }
  }
}

// Step 2: out += A V (A is zero above the diagonal, so token tiles kt <= ti); rows < m written to
// out_h (token 0's column c0) at token t0.
template <int D>
__device__ __forceinline__ void AddIntraAndStore(const Shared<D>& sh, Acc (&out)[2], float* scratch, int warp,
                                                 int lane, int row_tiles, int m, float* out_h, int64_t t0,
                                                 int64_t out_stride) {
  using L = Smem<D>;
#pragma unroll
  for (int p = 0; p < 2; ++p) {
    const int ti = OutputTileRow(warp, p), tj = OutputTileColumn(warp, p);
    if (ti >= row_tiles) continue;
    for (int kt = 0; kt <= ti; ++kt) {
      FragA aa;
      FragB vb;
      wmma::load_matrix_sync(aa, sh.a + ti * kT * L::kLdA + kt * kT, L::kLdA);
      wmma::load_matrix_sync(vb, sh.v + kt * kT * L::kLdV + tj * kT, L::kLdV);
      wmma::mma_sync(out[p], aa, vb, out[p]);
    }
    ToScratch(scratch, out[p]);
#pragma unroll 1
    for (int e = lane; e < kT * kT; e += 32) {
      const int i = ti * kT + e / kT;
      if (i < m) out_h[(t0 + i) * out_stride + tj * kT + e % kT] = scratch[(e / kT) * kLdScratch + e % kT];
    }
    __syncwarp();
  }
}

// Step 3: state = e[m] state + K^T bf16(e[m-1-j] V).
template <int D, int kTiles>
__device__ __forceinline__ void UpdateState(const Shared<D>& sh, Acc (&state)[kTiles], int warp, int row_tiles,
                                            int m) {
  using L = Smem<D>;
  const float block_decay = sh.decay[m];
#pragma unroll
  for (int k = 0; k < kTiles; ++k) {
    const int t = warp + kWarps * k, ri = t / kTilesC, cj = t % kTilesC;
    for (int x = 0; x < state[k].num_elements; ++x) state[k].x[x] *= block_decay;
#pragma unroll 1
    for (int kt = 0; kt < row_tiles; ++kt) {
      FragACol ka;  // K^T: element (a, j) is k[j][a]
      FragB vd;
      wmma::load_matrix_sync(ka, sh.k + kt * kT * L::kLdQk + ri * kT, L::kLdQk);
      wmma::load_matrix_sync(vd, sh.vd + kt * kT * L::kLdV + cj * kT, L::kLdV);
      wmma::mma_sync(state[k], ka, vd, state[k]);
    }
  }
}

template <int D>
__global__ void __launch_bounds__(kThreads, 1) LightningPrefillBlockedKernel(LightningPrefillArgs a) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
  __trap();  // bf16 WMMA needs sm_80; LightningPrefillBlocked refuses older devices
#else
  using L = Smem<D>;
  constexpr int kColBlocks = D / kC;
  constexpr int kStateTiles = (D / kT) * kTilesC / kWarps;  // per warp: 4 (D = 128) or 2 (D = 64)
  constexpr int kQkLoads = kB * D / kThreads;              // q (and k) elements per thread per block
  constexpr int kVLoads = kB * kC / kThreads;              // v elements per thread per block
  static_assert((D / kT) * kTilesC % kWarps == 0 && kB * D % kThreads == 0 && kB * kC % kThreads == 0);

  extern __shared__ __align__(128) unsigned char smem[];
  const Shared<D> sh{reinterpret_cast<Bf16*>(smem + L::kQ),  reinterpret_cast<Bf16*>(smem + L::kK),
                     reinterpret_cast<Bf16*>(smem + L::kV),  reinterpret_cast<Bf16*>(smem + L::kVd),
                     reinterpret_cast<Bf16*>(smem + L::kA),  reinterpret_cast<Bf16*>(smem + L::kS),
                     reinterpret_cast<float*>(smem + L::kDecay)};

  const int tid = static_cast<int>(threadIdx.x), lane = tid % 32, warp = tid / 32;
  float* scratch = reinterpret_cast<float*>(smem + L::kScratch) + warp * kT * kLdScratch;  // [16, 20]
  const int h = static_cast<int>(blockIdx.x) / kColBlocks;
  const int c0 = (static_cast<int>(blockIdx.x) % kColBlocks) * kC;
  const int64_t n = a.n;
  const int64_t qkv_stride = static_cast<int64_t>(a.num_heads) * 3 * D;
  const int64_t out_stride = static_cast<int64_t>(a.num_heads) * D;
  const float* qkv_h = a.qkv + static_cast<int64_t>(h) * 3 * D;   // [q | k | v] of head h, token 0
  float* out_h = a.out + static_cast<int64_t>(h) * D + c0;          // column c0 of head h, token 0
  float* state_h = a.state + static_cast<int64_t>(h) * D * D + c0;  // [D, D] from column c0

  const float slope = a.slopes[h];
  for (int d = tid; d <= kB; d += kThreads) sh.decay[d] = expf(-slope * static_cast<float>(d));

  Acc state[kStateTiles];
  LoadState<D>(state, state_h, scratch, warp, lane);
  PublishState<D>(state, scratch, sh.s, warp, lane);

  // Element e = tid + kThreads * it of the block's [B, D] q and k, and of its [B, 64] v columns:
  // row e / D (or e / 64), so each pass covers kThreads / D rows. The pointers advance by a pass
  // at a time (offsets computed once per element would all be hoisted out of the token loop and
  // cost two registers each).
  constexpr int kQkRowsPerPass = kThreads / D, kVRowsPerPass = kThreads / kC;
  static_assert(kThreads % D == 0 && kThreads % kC == 0);
  float q_next[kQkLoads], k_next[kQkLoads], v_next[kVLoads];
  auto fetch = [&](int64_t t0) {
    const int64_t m = n - t0 < kB ? n - t0 : kB;
    const float* qk = qkv_h + (t0 + tid / D) * qkv_stride + tid % D;
#pragma unroll
    for (int it = 0; it < kQkLoads; ++it, qk += kQkRowsPerPass * qkv_stride) {
      const bool live = tid / D + kQkRowsPerPass * it < m;
      q_next[it] = live ? qk[0] : 0.f;
      k_next[it] = live ? qk[D] : 0.f;
    }
    const float* v = qkv_h + (t0 + tid / kC) * qkv_stride + 2 * D + c0 + tid % kC;
#pragma unroll
    for (int it = 0; it < kVLoads; ++it, v += kVRowsPerPass * qkv_stride) {
      v_next[it] = tid / kC + kVRowsPerPass * it < m ? v[0] : 0.f;
    }
  };
  fetch(0);

  for (int64_t t0 = 0; t0 < n; t0 += kB) {
    const int m = static_cast<int>(n - t0 < kB ? n - t0 : kB);
    const int row_tiles = (m + kT - 1) / kT;  // token tiles holding rows < m
    __syncthreads();  // the previous block is done with q .. vd; decay[] is written
    StageBlock<D>(sh, q_next, k_next, v_next, m, tid);
    __syncthreads();  // the block and bf16(S0) are visible
    if (t0 + kB < n) fetch(t0 + kB);

    Acc out[2];
    InterAndScores<D>(sh, out, scratch, warp, lane, row_tiles);
    __syncthreads();  // A is complete; nobody reads bf16(S0) any more in this block
    AddIntraAndStore<D>(sh, out, scratch, warp, lane, row_tiles, m, out_h, t0, out_stride);
    UpdateState<D>(sh, state, warp, row_tiles, m);
    if (t0 + kB < n) PublishState<D>(state, scratch, sh.s, warp, lane);  // for the next block's Q S0
  }
  StoreState<D>(state, state_h, scratch, warp, lane);
#endif
}

// The kernel's shared-memory opt-in, set once per device (it is the function's attribute on that
// device: setting it on every launch cost a driver call per call).
template <int D>
cudaError_t OptInSharedMemoryOnce(size_t bytes) {
  static std::mutex mu;
  static std::set<int> done;
  int device = 0;
  cudaError_t err = cudaGetDevice(&device);
  if (err != cudaSuccess) return err;
  std::lock_guard<std::mutex> lock(mu);
  if (done.count(device) > 0) return cudaSuccess;
  err = cudaFuncSetAttribute(LightningPrefillBlockedKernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             static_cast<int>(bytes));
  if (err == cudaSuccess) done.insert(device);
  return err;
}

template <int D>
cudaError_t Launch(const LightningPrefillArgs& a, cudaStream_t stream) {
  constexpr size_t kSmem = Smem<D>::kBytes;
  const cudaError_t err = OptInSharedMemoryOnce<D>(kSmem);
  if (err != cudaSuccess) return err;
  const unsigned blocks = static_cast<unsigned>(LightningPrefillBlockedBlocks(a.num_heads, D));
  LightningPrefillBlockedKernel<D><<<blocks, kThreads, kSmem, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace

cudaError_t LaunchLightningPrefillBlocked(const LightningPrefillArgs& a, cudaStream_t stream) {
  switch (a.head_dim) {
    case 64: return Launch<64>(a, stream);
    case 128: return Launch<128>(a, stream);
    default: return cudaErrorInvalidValue;  // kernels_cuda.cc refuses other head dims first
  }
}

}  // namespace mmx::kernels::cuda::internal
