// LightningAttention (MODEL.md §3.4), parallel over heads on ThreadPool::Default().
//
// n == 1: the recurrence, one fused pass over each head's state (lightning_decode.h).
// n > 1: the block form. Per head and block of m <= B tokens, with e[d] = exp(-s*d) (d >= 0 only,
// so nothing can overflow) and Q, K, V the block's [m, D] rows:
//   A     = (Q K^T) . mask(e[i-j], j <= i)        intra-block scores            [m, m]
//   O     = diag(e[i+1]) (Q S0) + A V             inter + intra                 [m, D]
//   S_new = e[m] S0 + (diag(e[m-1-j]) K)^T V       state after the block         [D, D]
// Each product runs through the Gemm row kernel (fp32 weights, register-tiled), on operands
// copied into contiguous, zero-padded scratch buffers.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "base/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_impl.h"
#include "kernels/cpu/lightning_decode.h"
#include "kernels/cpu/lightning_impl.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace internal {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kMaxVectors = 4;  // 4 accumulators + 4 v vectors + temporaries < 16
  static V Zero() { return _mm256_setzero_ps(); }
  static V Set1(float x) { return _mm256_set1_ps(x); }
  static V Load(const float* p) { return _mm256_loadu_ps(p); }
  static void Store(float* p, V v) { _mm256_storeu_ps(p, v); }
  static V Mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V Fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
};

}  // namespace

void LightningDecodeHeadAvx2(const float* q, const float* k, const float* v, float lambda, float* S, int D,
                             float* o) {
  DecodeHead<Avx2>(q, k, v, lambda, S, D, o);
}

}  // namespace internal

namespace {

using internal::GemmArgs;

// Activation (x) operands of the Gemm row kernel need a leading dimension that is a multiple of
// the widest ISA chunk, zero padded.
int64_t PaddedLd(int64_t cols) {
  return (cols + internal::kGemmChunkAvx512 - 1) / internal::kGemmChunkAvx512 * internal::kGemmChunkAvx512;
}

// y[t, r] = sum_c x[t * ldx + c] * w[r * cols + c] for t < tokens, r < rows; y is [tokens, rows].
void SmallGemm(const float* x, int64_t ldx, int64_t tokens, const float* w, int64_t rows, int64_t cols, float* y) {
  GemmArgs args;
  args.x = x;
  args.ldx = ldx;
  args.num_tokens = tokens;
  args.w = WeightView{w, DType::kF32, rows, cols};
  args.y = y;
  if (Avx512Active()) {
    internal::GemmRowsAvx512(args, 0, rows);
  } else {
    internal::GemmRowsAvx2(args, 0, rows);
  }
}

// Per-thread buffers of the block form, reused across heads, blocks and calls.
struct BlockScratch {
  std::vector<float> decay;   // e[d] = exp(-s*d), d = 0..B
  std::vector<float> q;       // [m, ld_d]   x of Q K^T and Q S0
  std::vector<float> k;       // [m, D]      w of Q K^T
  std::vector<float> vt;      // [D, m]      w of A V and of the state update (V^T)
  std::vector<float> kt;      // [D, ld_m]   x of the state update (decayed K^T)
  std::vector<float> st;      // [D, D]      w of Q S0 (S0^T)
  std::vector<float> scores;  // [m, m]      Q K^T
  std::vector<float> a;       // [m, ld_m]   masked, decayed scores
  std::vector<float> inter;   // [m, D]
  std::vector<float> intra;   // [m, D]
  std::vector<float> incr;    // [D, D]
};

void Fit(std::vector<float>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<size_t>(n));
}

// One block of m tokens starting at t0, one head. S: [D, D], updated in place.
void PrefillBlock(const LightningShape& shape, int h, const float* qkv, int64_t t0, int64_t m, float* S,
                  float* out, BlockScratch& sc) {
  const int64_t N = shape.num_heads, D = shape.head_dim;
  const int64_t ld_d = PaddedLd(D), ld_m = PaddedLd(m);
  const float* e = sc.decay.data();
  Fit(sc.q, m * ld_d);
  Fit(sc.k, m * D);
  Fit(sc.vt, D * m);
  Fit(sc.kt, D * ld_m);
  Fit(sc.st, D * D);
  Fit(sc.scores, m * m);
  Fit(sc.a, m * ld_m);
  Fit(sc.inter, m * D);
  Fit(sc.intra, m * D);
  Fit(sc.incr, D * D);

  for (int64_t i = 0; i < m; ++i) {
    const float* row = qkv + (t0 + i) * N * 3 * D + h * 3 * D;  // [q | k | v] of head h
    std::memcpy(&sc.q[i * ld_d], row, static_cast<size_t>(D) * sizeof(float));
    std::fill(&sc.q[i * ld_d + D], &sc.q[i * ld_d + ld_d], 0.f);
    std::memcpy(&sc.k[i * D], row + D, static_cast<size_t>(D) * sizeof(float));
    for (int64_t b = 0; b < D; ++b) sc.vt[b * m + i] = row[2 * D + b];
    const float kd = e[m - 1 - i];
    for (int64_t a = 0; a < D; ++a) sc.kt[a * ld_m + i] = kd * row[D + a];
  }
  for (int64_t a = 0; a < D; ++a) std::fill(&sc.kt[a * ld_m + m], &sc.kt[a * ld_m + ld_m], 0.f);
  for (int64_t a = 0; a < D; ++a)
    for (int64_t b = 0; b < D; ++b) sc.st[b * D + a] = S[a * D + b];

  SmallGemm(sc.q.data(), ld_d, m, sc.k.data(), m, D, sc.scores.data());  // [m, m] = Q K^T
  for (int64_t i = 0; i < m; ++i) {
    float* ai = &sc.a[i * ld_m];
    for (int64_t j = 0; j <= i; ++j) ai[j] = sc.scores[i * m + j] * e[i - j];
    std::fill(ai + i + 1, ai + ld_m, 0.f);
  }
  SmallGemm(sc.q.data(), ld_d, m, sc.st.data(), D, D, sc.inter.data());  // [m, D] = Q S0
  SmallGemm(sc.a.data(), ld_m, m, sc.vt.data(), D, m, sc.intra.data());  // [m, D] = A V
  for (int64_t i = 0; i < m; ++i) {
    float* o = out + (t0 + i) * N * D + h * D;
    const float qd = e[i + 1];
    for (int64_t b = 0; b < D; ++b) o[b] = qd * sc.inter[i * D + b] + sc.intra[i * D + b];
  }
  SmallGemm(sc.kt.data(), ld_m, D, sc.vt.data(), D, m, sc.incr.data());  // [D, D] = (dK)^T V
  const float bd = e[m];
  for (int64_t i = 0; i < D * D; ++i) S[i] = bd * S[i] + sc.incr[i];
}

void PrefillHead(const LightningShape& shape, int h, const float* qkv, int64_t n, float* state, float* out) {
  thread_local BlockScratch sc;
  const int64_t B = std::max(1, shape.block_size), D = shape.head_dim;
  const float s = shape.slopes[h];
  Fit(sc.decay, B + 1);
  for (int64_t d = 0; d <= B; ++d) sc.decay[d] = std::exp(-s * static_cast<float>(d));
  float* S = state + h * D * D;
  for (int64_t t0 = 0; t0 < n; t0 += B) PrefillBlock(shape, h, qkv, t0, std::min(B, n - t0), S, out, sc);
}

// Below this much state a second thread is not worth waking.
constexpr int64_t kMinParallelState = 1 << 14;

}  // namespace

void LightningAttention(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                        float* out) {
  if (n <= 0) return;
  const int N = shape.num_heads, D = shape.head_dim;
  auto heads = [&](int64_t h0, int64_t h1) {
    for (int64_t h = h0; h < h1; ++h) {
      if (n == 1) {
        const float* q = qkv + h * 3 * D;
        const float lambda = std::exp(-shape.slopes[h]);
        float* S = state + h * D * D;
        float* o = out + h * D;
        if (Avx512Active()) {
          internal::LightningDecodeHeadAvx512(q, q + D, q + 2 * D, lambda, S, D, o);
        } else {
          internal::LightningDecodeHeadAvx2(q, q + D, q + 2 * D, lambda, S, D, o);
        }
      } else {
        PrefillHead(shape, static_cast<int>(h), qkv, n, state, out);
      }
    }
  };
  if (static_cast<int64_t>(N) * D * D * n < kMinParallelState) {
    heads(0, N);
  } else {
    ThreadPool::Default().ParallelFor(N, 1, heads);
  }
}

}  // namespace mmx::kernels
