// The int8 weight-only Gemm row kernel, written once over a vector-ISA traits class and
// instantiated in gemm_int8_avx2.cc and gemm_int8_avx512.cc (each compiled with its own flags).
// Include only from those.
//
// Weights q [rows, cols] int8, row-major, one fp32 scale per row; activations fp32 [T, cols].
// Every weight vector is widened in registers (sign-extend to int32, convert to fp32: exact, no
// rounding) and multiplied with fp32 activations into fp32 accumulators; the row's scale
// multiplies the finished sum once. The shapes follow gemm_tile.h (the bf16/fp32 kernel), whose
// measurements carry over: one row at a time for a single token (the whole call one sequential
// stream, which the hardware prefetcher follows), R rows x TT tokens register tiles otherwise,
// tokens in blocks of kInt8TokenBlock so one block's activations stay in L2.
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <utility>

#include "kernels/cpu/gemm_int8.h"

namespace mmx::kernels::internal {

// Traits (per ISA) provide:
//   using V; static constexpr int kWidth;        // fp32 lanes per vector = int8 per weight load
//   static constexpr int kRows, kMaxTokens;       // register tile of the batched kernel
//   V Zero(); V Add(V, V); V Fma(V a, V b, V acc); float Sum(V);
//   V LoadX(const float*);   V LoadXPart(const float*, int n);    // n < kWidth, zeros after
//   V LoadQ(const int8_t*);  V LoadQPart(const int8_t*, int n);   // widened to fp32

inline constexpr int64_t kInt8TokenBlock = 64;
// Columns between two software prefetches of the next row block: one cache line of int8.
inline constexpr int64_t kInt8Line = 64;

// sum_k x[k] * q[k] for one row (num_tokens == 1). Memory-bound: eight independent accumulators
// keep the widen-convert-FMA chains of several cache lines in flight.
template <class T>
float GemvRowInt8(const int8_t* w, int64_t cols, const float* x) {
  using V = typename T::V;
  constexpr int kUnroll = 8;
  constexpr int64_t kStep = kUnroll * T::kWidth;
  V acc[kUnroll];
  for (V& a : acc) a = T::Zero();
  int64_t k = 0;
  for (; k + kStep <= cols; k += kStep) {
#pragma GCC unroll 8
    for (int j = 0; j < kUnroll; ++j)
      acc[j] = T::Fma(T::LoadQ(w + k + j * T::kWidth), T::LoadX(x + k + j * T::kWidth), acc[j]);
  }
  for (; k + T::kWidth <= cols; k += T::kWidth) acc[0] = T::Fma(T::LoadQ(w + k), T::LoadX(x + k), acc[0]);
  if (k < cols) {
    const int n = static_cast<int>(cols - k);
    acc[1] = T::Fma(T::LoadQPart(w + k, n), T::LoadXPart(x + k, n), acc[1]);
  }
  for (int j = 1; j < kUnroll; ++j) acc[0] = T::Add(acc[0], acc[j]);
  return T::Sum(acc[0]);
}

// y[t * ldy + r] = scales[r] * dot(q row r, x row t) for r < R, t < TT. `w` points at R rows of
// `cols` int8 (stride cols), `x` at TT rows of stride ldx. If `prefetch` is set, the R rows there
// (the next row block) are prefetched a line per kInt8Line columns, as gemm_tile.h does: a tile
// computes long enough per weight byte that the hardware prefetcher alone falls behind.
template <class T, int R, int TT>
void TileInt8(const int8_t* w, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy,
              const float* scales, const int8_t* prefetch) {
  using V = typename T::V;
  V acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = T::Zero();

  auto step = [&](int64_t k) {
    V wv[R];
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) wv[r] = T::LoadQ(w + r * cols + k);
#pragma GCC unroll 8
    for (int t = 0; t < TT; ++t) {
      const V xv = T::LoadX(x + t * ldx + k);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) acc[r][t] = T::Fma(wv[r], xv, acc[r][t]);
    }
  };

  const int64_t lines = cols / kInt8Line * kInt8Line;
  int64_t k = 0;
  for (; k < lines; k += kInt8Line) {
    if (prefetch != nullptr) {
      for (int r = 0; r < R; ++r) __builtin_prefetch(prefetch + r * cols + k, 0, 3);
    }
#pragma GCC unroll 8
    for (int64_t j = 0; j < kInt8Line; j += T::kWidth) step(k + j);
  }
  for (; k + T::kWidth <= cols; k += T::kWidth) step(k);
  if (k < cols) {
    // The ragged last vector: zero-filled loads of both operands.
    const int n = static_cast<int>(cols - k);
    V wv[R];
    for (int r = 0; r < R; ++r) wv[r] = T::LoadQPart(w + r * cols + k, n);
    for (int t = 0; t < TT; ++t) {
      const V xv = T::LoadXPart(x + t * ldx + k, n);
      for (int r = 0; r < R; ++r) acc[r][t] = T::Fma(wv[r], xv, acc[r][t]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * ldy + r] = scales[r] * T::Sum(acc[r][t]);
}

// TileInt8<R, TT> for a runtime TT in [1, T::kMaxTokens].
template <class T, int R>
void TileInt8Tokens(int tt, const int8_t* w, int64_t cols, const float* x, int64_t ldx, float* y, int64_t ldy,
                    const float* scales, const int8_t* prefetch) {
  using Fn = void (*)(const int8_t*, int64_t, const float*, int64_t, float*, int64_t, const float*, const int8_t*);
  static constexpr auto kTable = []<int... I>(std::integer_sequence<int, I...>) {
    return std::array<Fn, sizeof...(I)>{&TileInt8<T, R, I + 1>...};
  }(std::make_integer_sequence<int, T::kMaxTokens>{});
  kTable[tt - 1](w, cols, x, ldx, y, ldy, scales, prefetch);
}

// Entry point for one ISA: rows [row_begin, row_end) of every token.
template <class T>
void GemmInt8RowsFor(const GemmInt8Args& a, int64_t row_begin, int64_t row_end) {
  const int8_t* w = static_cast<const int8_t*>(a.w.data);
  const float* scales = a.w.scales;
  const int64_t cols = a.w.cols, ldy = a.w.rows;
  if (a.num_tokens == 1) {
    for (int64_t r = row_begin; r < row_end; ++r) a.y[r] = scales[r] * GemvRowInt8<T>(w + r * cols, cols, a.x);
    return;
  }
  for (int64_t tb = 0; tb < a.num_tokens; tb += kInt8TokenBlock) {
    const int64_t tn = std::min(kInt8TokenBlock, a.num_tokens - tb);
    // Tiles of near-equal width (10 tokens in 4-token tiles -> 3,3,4, not 4,4,2): a narrow last
    // tile wastes most of its weight conversions.
    const int64_t num_tiles = (tn + T::kMaxTokens - 1) / T::kMaxTokens;
    auto run_rows = [&]<int R>(int64_t r0) {
      int64_t t = tb;
      for (int64_t i = 0; i < num_tiles; ++i) {
        const int tt = static_cast<int>(tn * (i + 1) / num_tiles - tn * i / num_tiles);
        // The first tile of a row block brings the next block's rows in behind it.
        const int8_t* next = i == 0 && r0 + R < row_end ? w + (r0 + R) * cols : nullptr;
        TileInt8Tokens<T, R>(tt, w + r0 * cols, cols, a.x + t * a.ldx, a.ldx, a.y + t * ldy + r0, ldy, scales + r0,
                             next);
        t += tt;
      }
    };
    int64_t r = row_begin;
    for (; r + T::kRows <= row_end; r += T::kRows) run_rows.template operator()<T::kRows>(r);
    for (; r < row_end; ++r) run_rows.template operator()<1>(r);
  }
}

}  // namespace mmx::kernels::internal
