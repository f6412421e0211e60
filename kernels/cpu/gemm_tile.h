// The Gemm row kernel, written once over a vector-ISA traits class and instantiated in
// gemm_avx2.cc and gemm_avx512.cc (each compiled with its own flags). Include only from those.
//
// Form: dot products. Weights are read in place, row-major [rows, cols]; a tile of R weight rows
// x TT tokens keeps R*TT vector accumulators in registers, so each weight vector is converted to
// fp32 once per k-step and used for TT tokens, and each activation vector is loaded once and used
// for R rows. Activations stay fp32 (never rounded to bf16). Tokens are processed in blocks of
// kTokenBlock so one block's activations stay in L2 while the thread's weight rows stream past.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/cpu/gemm_impl.h"

namespace mmx::kernels::internal {

// Traits (per ISA) provide:
//   using V; static constexpr int kWidth;   // floats per vector; a chunk is 2*kWidth columns
//   static constexpr int kRows, kMaxTokens;  // register tile of the batched kernel
//   V Zero(); V LoadX(const float*); V Add(V, V); V Fma(V a, V b, V acc); float Sum(V);
//   V LoadBf16(const uint16_t* chunk, int half);   // half 0: even columns, 1: odd columns
//   V LoadF16(const uint16_t* chunk, int half);    // half h: columns [h*W, h*W+W)
//   V LoadF32(const float* chunk, int half);

template <DType kD>
using ElemOf = std::conditional_t<kD == DType::kF32, float, uint16_t>;

template <class T, DType kD>
inline typename T::V LoadW(const ElemOf<kD>* p, int half) {
  if constexpr (kD == DType::kBF16) return T::LoadBf16(p, half);
  else if constexpr (kD == DType::kF16) return T::LoadF16(p, half);
  else return T::LoadF32(p, half);
}

inline constexpr int64_t kTokenBlock = 64;

// Copies weight columns [begin, cols) of a row (the ragged last chunk) to buf, zero padded.
template <class Elem, int64_t kChunk>
inline const Elem* TailChunk(const Elem* row, int64_t begin, int64_t cols, Elem* buf) {
  std::memset(buf, 0, kChunk * sizeof(Elem));
  std::memcpy(buf, row + begin, static_cast<size_t>(cols - begin) * sizeof(Elem));
  return buf;
}

// y[t * ldy + r] = dot(w row r, x row t) for r < R, t < TT. `w` points at R rows of `cols`
// elements (stride ldw); `x` at TT rows of stride ldx laid out as GemmArgs::x. If
// `prefetch` is set, the R rows there (the next row block) are prefetched as the k loop
// advances: a tile computes long enough per weight byte that the hardware prefetcher alone
// leaves the next block's first touches waiting on DRAM (measured: at 8 tokens, time = compute +
// memory, not the max). The hint is prefetcht2 (into L2, not L1): a T0 prefetch of a whole
// block holds L1 miss buffers the tile's own loads need; at 8 tokens T2 gave 83 GFLOP/s on one
// core against 71 for T0, and prefetching 2 or 4 blocks ahead changed nothing.
template <class T, DType kD, int R, int TT>
void Tile(const ElemOf<kD>* w, int64_t cols, int64_t ldw, const float* x, int64_t ldx, float* y,
          int64_t ldy, const ElemOf<kD>* prefetch) {
  using V = typename T::V;
  using Elem = ElemOf<kD>;
  constexpr int64_t kChunk = 2 * T::kWidth;
  V acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = T::Zero();

  // One chunk: rows[r] + k is the chunk's first weight of row r, xk its offset in x.
  auto step = [&](const Elem* const* rows, int64_t k, int64_t xk) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      V wv[R];
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) wv[r] = LoadW<T, kD>(rows[r] + k, h);
#pragma GCC unroll 8
      for (int t = 0; t < TT; ++t) {
        const V xv = T::LoadX(x + t * ldx + xk + h * T::kWidth);
#pragma GCC unroll 8
        for (int r = 0; r < R; ++r) acc[r][t] = T::Fma(wv[r], xv, acc[r][t]);
      }
    }
  };

  const Elem* rows[R];
  for (int r = 0; r < R; ++r) rows[r] = w + r * ldw;
  const int64_t full = cols / kChunk * kChunk;
  for (int64_t k = 0; k < full; k += kChunk) {
    if (prefetch != nullptr) {
      for (int r = 0; r < R; ++r)
        for (int64_t line = 0; line < kChunk * static_cast<int64_t>(sizeof(Elem)); line += 64)
          __builtin_prefetch(reinterpret_cast<const char*>(prefetch + r * ldw + k) + line, 0, 1);
    }
    step(rows, k, k);
  }
  if (full < cols) {  // the ragged last chunk, zero padded like x
    alignas(64) Elem tail[R][kChunk];
    const Elem* tail_rows[R];
    for (int r = 0; r < R; ++r) tail_rows[r] = TailChunk<Elem, kChunk>(rows[r], full, cols, tail[r]);
    step(tail_rows, 0, full);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * ldy + r] = T::Sum(acc[r][t]);
}

template <class T, DType kD>
inline void LoadWPair(const ElemOf<kD>* p, typename T::V* lo, typename T::V* hi) {
  if constexpr (kD == DType::kBF16) {
    T::LoadBf16Pair(p, lo, hi);  // one load for both halves
  } else {
    *lo = LoadW<T, kD>(p, 0);
    *hi = LoadW<T, kD>(p, 1);
  }
}

// y = dot(w, x) for one row, for num_tokens == 1. Memory-bound, so the shape of the access
// matters more than the arithmetic: one row at a time makes the whole call one sequential stream
// (row r+1 follows row r in memory), which the hardware prefetcher follows at close to read
// bandwidth. Measured on Zen 4: 2 or 4 rows side by side (interleaved streams, one 4 KiB page
// each at cols = 2048) lost 15-45%, and software prefetch (T0 or NTA, 0.5-8 KiB ahead) did not
// help, nor did realigning the chunk grid to the weights' address (its partial head chunks cost
// more than the split loads they saved). Eight accumulators (four chunks per iteration) hide the
// FMA latency.
template <class T, DType kD>
void GemvRow(const ElemOf<kD>* w, int64_t cols, const float* x, float* y) {
  using V = typename T::V;
  using Elem = ElemOf<kD>;
  constexpr int64_t kChunk = 2 * T::kWidth;
  constexpr int kUnroll = 4;  // chunks per iteration
  V acc[2 * kUnroll];
  for (V& a : acc) a = T::Zero();
  const int64_t full = cols / kChunk * kChunk;
  int64_t k = 0;
  for (; k + kUnroll * kChunk <= full; k += kUnroll * kChunk) {
#pragma GCC unroll 8
    for (int u = 0; u < kUnroll; ++u) {
      V lo, hi;
      LoadWPair<T, kD>(w + k + u * kChunk, &lo, &hi);
      acc[2 * u] = T::Fma(lo, T::LoadX(x + k + u * kChunk), acc[2 * u]);
      acc[2 * u + 1] = T::Fma(hi, T::LoadX(x + k + u * kChunk + T::kWidth), acc[2 * u + 1]);
    }
  }
  alignas(64) Elem tail[kChunk];
  for (; k < cols; k += kChunk) {
    const Elem* p = k < full ? w + k : TailChunk<Elem, kChunk>(w, k, cols, tail);
    V lo, hi;
    LoadWPair<T, kD>(p, &lo, &hi);
    acc[0] = T::Fma(lo, T::LoadX(x + k), acc[0]);
    acc[1] = T::Fma(hi, T::LoadX(x + k + T::kWidth), acc[1]);
  }
  for (int j = 2; j < 2 * kUnroll; ++j) acc[j % 2] = T::Add(acc[j % 2], acc[j]);
  *y = T::Sum(T::Add(acc[0], acc[1]));
}

// Tile<R, TT> for a runtime TT in [1, T::kMaxTokens].
template <class T, DType kD, int R>
void TileTokens(int tt, const ElemOf<kD>* w, int64_t cols, int64_t ldw, const float* x, int64_t ldx,
                float* y, int64_t ldy, const ElemOf<kD>* prefetch) {
  using Fn = void (*)(const ElemOf<kD>*, int64_t, int64_t, const float*, int64_t, float*, int64_t,
                      const ElemOf<kD>*);
  static constexpr auto kTable = []<int... I>(std::integer_sequence<int, I...>) {
    return std::array<Fn, sizeof...(I)>{&Tile<T, kD, R, I + 1>...};
  }(std::make_integer_sequence<int, T::kMaxTokens>{});
  kTable[tt - 1](w, cols, ldw, x, ldx, y, ldy, prefetch);
}

template <class T, DType kD>
void GemmRows(const GemmArgs& a, int64_t row_begin, int64_t row_end) {
  const ElemOf<kD>* w = static_cast<const ElemOf<kD>*>(a.w.data);
  const int64_t cols = a.w.cols, ldy = a.w.rows, ldw = a.ldw != 0 ? a.ldw : cols;
  if (a.num_tokens == 1) {
    for (int64_t r = row_begin; r < row_end; ++r) GemvRow<T, kD>(w + r * ldw, cols, a.x, a.y + r);
    return;
  }
  for (int64_t tb = 0; tb < a.num_tokens; tb += kTokenBlock) {
    const int64_t tn = std::min(kTokenBlock, a.num_tokens - tb);
    // Split the block into tiles of near-equal size (10 tokens in 4-token tiles -> 3,3,4, not
    // 4,4,2): a narrow last tile wastes most of its weight conversions.
    const int64_t num_tiles = (tn + T::kMaxTokens - 1) / T::kMaxTokens;
    int64_t r = row_begin;
    auto run_rows = [&]<int R>(int64_t r0) {
      int64_t t = tb;
      for (int64_t i = 0; i < num_tiles; ++i) {
        const int tt = static_cast<int>(tn * (i + 1) / num_tiles - tn * i / num_tiles);
        // The first tile of a row block brings the next block's rows in behind it.
        const ElemOf<kD>* next = i == 0 && r0 + R < row_end ? w + (r0 + R) * ldw : nullptr;
        TileTokens<T, kD, R>(tt, w + r0 * ldw, cols, ldw, a.x + t * a.ldx, a.ldx, a.y + t * ldy + r0, ldy,
                             next);
        t += tt;
      }
    };
    for (; r + T::kRows <= row_end; r += T::kRows) run_rows.template operator()<T::kRows>(r);
    for (; r < row_end; ++r) run_rows.template operator()<1>(r);
  }
}

// Entry point for one ISA: picks the element type.
template <class T>
void GemmRowsFor(const GemmArgs& a, int64_t row_begin, int64_t row_end) {
  switch (a.w.dtype) {
    case DType::kBF16: return GemmRows<T, DType::kBF16>(a, row_begin, row_end);
    case DType::kF16: return GemmRows<T, DType::kF16>(a, row_begin, row_end);
    case DType::kF32: return GemmRows<T, DType::kF32>(a, row_begin, row_end);
  }
}

}  // namespace mmx::kernels::internal
