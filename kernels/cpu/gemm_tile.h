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
//   static constexpr int kGemvRows;           // rows at once when num_tokens == 1
//   V Zero(); V LoadX(const float*); V Fma(V a, V b, V acc); float Sum(V);
//   V LoadBf16(const uint16_t* chunk, int half);   // half 0: even columns, 1: odd columns
//   V LoadF16(const uint16_t* chunk, int half);    // half h: columns [h*W, h*W+W)
//   V LoadF32(const float* chunk, int half);
//   void Prefetch(const void*);

template <DType kD>
using ElemOf = std::conditional_t<kD == DType::kF32, float, uint16_t>;

template <class T, DType kD>
inline typename T::V LoadW(const ElemOf<kD>* p, int half) {
  if constexpr (kD == DType::kBF16) return T::LoadBf16(p, half);
  else if constexpr (kD == DType::kF16) return T::LoadF16(p, half);
  else return T::LoadF32(p, half);
}

inline constexpr int64_t kTokenBlock = 64;

// y[t * ldy + r] = dot(w row r, x row t) for r < R, t < TT. `w` points at R rows of `cols`
// elements (stride cols); `x` at TT rows of stride ldx (zero padded past cols).
template <class T, DType kD, int R, int TT>
void Tile(const ElemOf<kD>* w, int64_t cols, const float* x, int64_t ldx, float* y,
          int64_t ldy) {
  using V = typename T::V;
  using Elem = ElemOf<kD>;
  constexpr int64_t kChunk = 2 * T::kWidth;
  V acc[R][TT];
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) acc[r][t] = T::Zero();

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
  for (int r = 0; r < R; ++r) rows[r] = w + r * cols;
  const int64_t full = cols / kChunk * kChunk;
  for (int64_t k = 0; k < full; k += kChunk) {
    if constexpr (TT == 1) {
      // GEMV streams weights at memory speed; a prefetch ~1 KiB ahead per row keeps enough
      // lines in flight for the rows read side by side.
      for (int r = 0; r < R; ++r) T::Prefetch(rows[r] + k + 1024 / sizeof(Elem));
    }
    step(rows, k, k);
  }
  if (full < cols) {
    // The ragged last chunk: copy it into zeroed buffers (x is zero padded to match).
    alignas(64) Elem tail[R][kChunk];
    const Elem* tail_rows[R];
    for (int r = 0; r < R; ++r) {
      std::memset(tail[r], 0, sizeof tail[r]);
      std::memcpy(tail[r], rows[r] + full, static_cast<size_t>(cols - full) * sizeof(Elem));
      tail_rows[r] = tail[r];
    }
    step(tail_rows, 0, full);
  }
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < TT; ++t) y[t * ldy + r] = T::Sum(acc[r][t]);
}

// Tile<R, TT> for a runtime TT in [1, T::kMaxTokens].
template <class T, DType kD, int R>
void TileTokens(int tt, const ElemOf<kD>* w, int64_t cols, const float* x, int64_t ldx, float* y,
                int64_t ldy) {
  using Fn = void (*)(const ElemOf<kD>*, int64_t, const float*, int64_t, float*, int64_t);
  static constexpr auto kTable = []<int... I>(std::integer_sequence<int, I...>) {
    return std::array<Fn, sizeof...(I)>{&Tile<T, kD, R, I + 1>...};
  }(std::make_integer_sequence<int, T::kMaxTokens>{});
  kTable[tt - 1](w, cols, x, ldx, y, ldy);
}

template <class T, DType kD>
void GemmRows(const GemmArgs& a, int64_t row_begin, int64_t row_end) {
  const ElemOf<kD>* w = static_cast<const ElemOf<kD>*>(a.w.data);
  const int64_t cols = a.w.cols, ldy = a.w.rows;
  if (a.num_tokens == 1) {
    int64_t r = row_begin;
    for (; r + T::kGemvRows <= row_end; r += T::kGemvRows)
      Tile<T, kD, T::kGemvRows, 1>(w + r * cols, cols, a.x, a.ldx, a.y + r, ldy);
    for (; r < row_end; ++r) Tile<T, kD, 1, 1>(w + r * cols, cols, a.x, a.ldx, a.y + r, ldy);
    return;
  }
  for (int64_t tb = 0; tb < a.num_tokens; tb += kTokenBlock) {
    const int64_t tn = std::min(kTokenBlock, a.num_tokens - tb);
    // Split the block into tiles of near-equal size (32 tokens -> 6,6,5,5,5,5, not 6x5 + 2).
    const int64_t num_tiles = (tn + T::kMaxTokens - 1) / T::kMaxTokens;
    int64_t r = row_begin;
    auto run_rows = [&]<int R>(int64_t r0) {
      int64_t t = tb;
      for (int64_t i = 0; i < num_tiles; ++i) {
        const int tt = static_cast<int>(tn * (i + 1) / num_tiles - tn * i / num_tiles);
        TileTokens<T, kD, R>(tt, w + r0 * cols, cols, a.x + t * a.ldx, a.ldx,
                               a.y + t * ldy + r0, ldy);
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
