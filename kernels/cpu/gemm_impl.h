// Internal interface between the Gemm launcher (gemm.cc: activation layout, threading, dispatch)
// and its per-ISA row kernels (gemm_avx2.cc, gemm_avx512.cc). Not part of the public API.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "base/thread_pool.h"
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

// Below this many multiply-adds a second thread costs more to wake than it saves.
inline constexpr int64_t kMinParallelMacs = int64_t{1} << 16;

// The row blocks of several GEMMs shared out in one pass over ThreadPool::Default() (or run
// here, when `macs` in all is too few to wake a thread): problem i owns blocks
// [first_block[i], first_block[i + 1]) of `block_rows` rows each, its last one cut at
// rows_of(i); run(i, row_begin, row_end) computes those rows of problem i.
template <class RowsOf, class Run>
void RunRowBlocks(const std::vector<int64_t>& first_block, int64_t block_rows, int64_t macs, RowsOf rows_of, Run run) {
  auto blocks = [&](int64_t b0, int64_t b1) {
    size_t i = std::upper_bound(first_block.begin(), first_block.end(), b0) - first_block.begin() - 1;
    for (; b0 < b1; ++i) {
      const int64_t end = std::min(b1, first_block[i + 1]);
      run(i, (b0 - first_block[i]) * block_rows, std::min(rows_of(i), (end - first_block[i]) * block_rows));
      b0 = end;
    }
  };
  if (macs < kMinParallelMacs) {
    blocks(0, first_block.back());
    return;
  }
  ThreadPool::Default().ParallelFor(first_block.back(), 1, blocks);
}

}  // namespace mmx::kernels::internal
