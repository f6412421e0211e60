// The int8 weight-only GEMM (DType::kI8 weights, fp32 activations): internal interface between
// its launcher (gemm_int8.cc: threading, ISA dispatch; gemm.cc sends I8 weights there) and the
// per-ISA row kernels (gemm_int8_avx2.cc, gemm_int8_avx512.cc, both from gemm_int8_tile.h).
// Not part of the public API: kernels.h's Gemm is.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace mmx::kernels::internal {

// One I8 Gemm call. x: [num_tokens, ldx] fp32, columns in order (int8 widens in order), each
// row 64-byte aligned (see gemm_int8.cc); y: [num_tokens, w.rows].
struct GemmInt8Args {
  const float* x = nullptr;
  int64_t ldx = 0;
  int64_t num_tokens = 0;
  WeightView w;  // dtype kI8, scales set
  float* y = nullptr;
};

// y[t, r] = w.scales[r] * sum_k x[t, k] * q[r, k] for every token and rows [row_begin, row_end).
// Safe to run concurrently on disjoint row ranges.
void GemmInt8RowsAvx2(const GemmInt8Args& args, int64_t row_begin, int64_t row_end);
void GemmInt8RowsAvx512(const GemmInt8Args& args, int64_t row_begin, int64_t row_end);

// The launcher: splits the rows over ThreadPool::Default() and runs the active ISA's kernel.
void GemmInt8(const float* x, int64_t num_tokens, const WeightView& w, float* y);

}  // namespace mmx::kernels::internal
