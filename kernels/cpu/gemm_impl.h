// Internal interface between the Gemm launcher (gemm.cc: activation layout, threading, dispatch)
// and its per-ISA row kernels (gemm_avx2.cc, gemm_avx512.cc). Not part of the public API.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace mmx::kernels::internal {

// One Gemm call after the activations have been laid out for the row kernels.
struct GemmArgs {
  // [num_tokens, ldx] fp32, zero-padded to ldx = cols rounded up to the ISA's chunk. For BF16
  // weights each chunk of `chunk` columns is stored as its even columns then its odd columns
  // (see PrepareActivations), which lets the kernel widen bf16 pairs with one shift or one AND.
  const float* x = nullptr;
  int64_t ldx = 0;
  int64_t num_tokens = 0;
  WeightView w;
  // Distance between weight rows, in elements; 0 means w.cols (a dense matrix). Internal
  // callers use it to multiply by a strided slice, e.g. one KV head's rows of a KV cache.
  int64_t ldw = 0;
  float* y = nullptr;  // [num_tokens, w.rows]
};

// Computes y[t, r] for every token and rows [row_begin, row_end). Safe to run concurrently on
// disjoint row ranges.
void GemmRowsAvx2(const GemmArgs& args, int64_t row_begin, int64_t row_end);
void GemmRowsAvx512(const GemmArgs& args, int64_t row_begin, int64_t row_end);

// Columns per inner step (two vectors) of each ISA's kernel: the unit of GemmArgs::x's layout.
inline constexpr int64_t kGemmChunkAvx2 = 16;
inline constexpr int64_t kGemmChunkAvx512 = 32;

}  // namespace mmx::kernels::internal
