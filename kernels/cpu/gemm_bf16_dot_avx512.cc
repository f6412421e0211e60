// vdpbf16ps GEMM for batched steps (ActivationPrecision::kBf16). Each 32-element chunk of a
// weight row is one zmm of bf16 used as is (no widening, unlike the fp32 path), multiplied with
// the same chunk of a token's bf16 activations: 16 fp32 lanes, each the sum of two products.
//
// Blocking: threads take blocks of 16 output rows (16 rows x 2048 bf16 = 64 KiB, kept in L2
// while every token block passes over them) from the row blocks of all the call's problems;
// inside, 4-token x 4-row register tiles (16 accumulators, 4 weight and 4 activation registers).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "base/bf16.h"
#include "base/thread_pool.h"
#include "kernels/cpu/gemm_bf16_dot.h"
#include "kernels/cpu/gemm_impl.h"

namespace mmx::kernels::internal {
namespace {

constexpr int64_t kChunk = 32;  // bf16 elements per zmm
constexpr int64_t kBlockRows = 16;
constexpr int64_t kTileRows = 4;

// Sum of the 16 lanes, once per output. (_mm512_reduce_add_ps and the 512->256 casts trip a
// false -Wuninitialized in GCC 12's headers; a store and a scalar sum do not.)
inline float HorizontalSum(__m512 v) {
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes, v);
  float sum = 0.f;
  for (float lane : lanes) sum += lane;
  return sum;
}

// Rows [r0, r0+RB) x tokens [t0, t0+TB): xb is [T, kp] bf16 (zero padded), w rows of k elements.
template <int RB, int TB>
void Tile(const uint16_t* w, int64_t k, const uint16_t* xb, int64_t kp, int64_t r0, int64_t t0,
          int64_t rows, float* y) {
  __m512 acc[RB][TB];
  for (int i = 0; i < RB; ++i) {
    for (int j = 0; j < TB; ++j) acc[i][j] = _mm512_setzero_ps();
  }
  const int64_t full = k / kChunk * kChunk;
  for (int64_t c = 0; c < kp; c += kChunk) {
    __m512i wv[RB];
    if (c < full) {
      for (int i = 0; i < RB; ++i) wv[i] = _mm512_loadu_si512(w + (r0 + i) * k + c);
    } else {
      // Last, partial chunk of the row: masked load, zeros beyond k (x is zero there too).
      const __mmask32 mask = static_cast<__mmask32>((uint64_t{1} << (k - c)) - 1);
      for (int i = 0; i < RB; ++i) wv[i] = _mm512_maskz_loadu_epi16(mask, w + (r0 + i) * k + c);
    }
    for (int j = 0; j < TB; ++j) {
      const __m512i xv = _mm512_loadu_si512(xb + (t0 + j) * kp + c);
      for (int i = 0; i < RB; ++i) {
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], (__m512bh)wv[i], (__m512bh)xv);
      }
    }
  }
  for (int i = 0; i < RB; ++i) {
    for (int j = 0; j < TB; ++j) y[(t0 + j) * rows + r0 + i] = HorizontalSum(acc[i][j]);
  }
}

using TileFn = void (*)(const uint16_t*, int64_t, const uint16_t*, int64_t, int64_t, int64_t, int64_t, float*);

template <int RB>
TileFn PickTokens(int tb) {
  switch (tb) {
    case 1: return &Tile<RB, 1>;
    case 2: return &Tile<RB, 2>;
    case 3: return &Tile<RB, 3>;
    default: return &Tile<RB, 4>;
  }
}

TileFn Pick(int rb, int tb) {
  switch (rb) {
    case 1: return PickTokens<1>(tb);
    case 2: return PickTokens<2>(tb);
    case 3: return PickTokens<3>(tb);
    default: return PickTokens<4>(tb);
  }
}

}  // namespace

namespace {

// x [T, k] rounded to bf16 (nearest even) into dst [T, kp], rows zero padded to whole chunks.
void RoundRows(const float* x, int64_t num_tokens, int64_t k, int64_t kp, std::vector<uint16_t>& dst) {
  dst.assign(static_cast<size_t>(num_tokens * kp), 0);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* src = x + t * k;
    uint16_t* out = dst.data() + t * kp;
    int64_t c = 0;
    for (; c + 32 <= k; c += 32) {
      const __m512bh packed = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(src + c + 16), _mm512_loadu_ps(src + c));
      _mm512_storeu_si512(out + c, (__m512i)packed);
    }
    for (; c < k; ++c) out[c] = FloatToBf16(src[c]);
  }
}

// Output rows [r_begin, r_end) of one problem, every token.
void RunRows(const GemmProblem& p, const uint16_t* xb, int64_t kp, int64_t r_begin, int64_t r_end) {
  const uint16_t* wd = static_cast<const uint16_t*>(p.w.data);
  for (int64_t t0 = 0; t0 < p.num_tokens; t0 += 4) {
    const int tb = static_cast<int>(std::min<int64_t>(4, p.num_tokens - t0));
    for (int64_t r = r_begin; r < r_end; r += kTileRows) {
      const int rb = static_cast<int>(std::min<int64_t>(kTileRows, r_end - r));
      Pick(rb, tb)(wd, p.w.cols, xb, kp, r, t0, p.w.rows, p.y);
    }
  }
}

}  // namespace

void GemmBf16DotGroupAvx512(const GemmProblem* const* problems, int64_t count) {
  // Called from the caller's thread, never inside a pool job: per-thread buffers.
  thread_local std::vector<std::vector<uint16_t>> buffers;
  if (static_cast<int64_t>(buffers.size()) < count) buffers.resize(count);
  // A name for this thread's buffers: the pool's threads must not see their own thread_local.
  std::vector<std::vector<uint16_t>>& rounded = buffers;
  std::vector<int64_t> kps(count), first_block(count + 1, 0);
  int64_t macs = 0;
  for (int64_t i = 0; i < count; ++i) {
    const GemmProblem& p = *problems[i];
    kps[i] = (p.w.cols + kChunk - 1) / kChunk * kChunk;
    RoundRows(p.x, p.num_tokens, p.w.cols, kps[i], rounded[i]);
    first_block[i + 1] = first_block[i] + (p.w.rows + kBlockRows - 1) / kBlockRows;
    macs += p.num_tokens * p.w.rows * p.w.cols;
  }
  RunRowBlocks(
      first_block, kBlockRows, macs, [&](size_t i) { return problems[i]->w.rows; },
      [&](size_t i, int64_t row_begin, int64_t row_end) { RunRows(*problems[i], rounded[i].data(), kps[i], row_begin, row_end); });
}

void GemmBf16DotAvx512(const float* x, int64_t num_tokens, const WeightView& w, float* y) {
  const GemmProblem problem{x, num_tokens, w, y};
  const GemmProblem* one = &problem;
  GemmBf16DotGroupAvx512(&one, 1);
}

}  // namespace mmx::kernels::internal
