// The I8 Gemm launcher: aligns the activations, splits the output rows over ThreadPool::Default()
// and calls the int8 row kernel of the active ISA. gemm.cc's Gemm sends I8 weights here before
// any bf16/fp32 layout work: int8 columns widen in order, so the activations keep their order.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_int8.h"

namespace mmx::kernels::internal {
namespace {

// Below this many multiply-adds a second thread costs more to wake than it saves (as gemm.cc).
constexpr int64_t kMinParallelMacs = int64_t{1} << 16;
// Ranges in multiples of 16 rows keep every thread on whole register tiles (4 or 2 rows).
constexpr int64_t kRowAlign = 16;
// Activation rows start on 64-byte boundaries, so no vector load of x splits a cache line.
// Measured on Zen 4 (one core, weights in cache): 29 G int8 weights/s with x aligned, 21 with x
// at 16 bytes past a line: the split loads, not the widening, were the GEMV's limit.
constexpr int64_t kAlignFloats = 16;

// x [num_tokens, cols] as it is when every row is aligned already; else a copy in `buf` with
// rows of ldx = cols rounded up to 16 floats (one row alone needs no rounding).
const float* AlignActivations(const float* x, int64_t num_tokens, int64_t cols, int64_t* ldx,
                              std::vector<float>& buf) {
  const bool aligned = reinterpret_cast<uintptr_t>(x) % (kAlignFloats * sizeof(float)) == 0;
  if (aligned && (num_tokens == 1 || cols % kAlignFloats == 0)) {
    *ldx = cols;
    return x;
  }
  const int64_t ld = num_tokens == 1 ? cols : (cols + kAlignFloats - 1) / kAlignFloats * kAlignFloats;
  *ldx = ld;
  buf.resize(static_cast<size_t>(num_tokens * ld + kAlignFloats));
  float* base = buf.data();
  base += (kAlignFloats - reinterpret_cast<uintptr_t>(base) / sizeof(float) % kAlignFloats) % kAlignFloats;
  for (int64_t t = 0; t < num_tokens; ++t) std::memcpy(base + t * ld, x + t * cols, static_cast<size_t>(cols) * sizeof(float));
  return base;
}

}  // namespace

void GemmInt8(const float* x, int64_t num_tokens, const WeightView& w, float* y) {
  auto* rows_fn = Avx512Active() ? &GemmInt8RowsAvx512 : &GemmInt8RowsAvx2;
  // The launcher runs on the caller's thread (never inside a pool job): one buffer per thread.
  thread_local std::vector<float> buf;
  GemmInt8Args args;
  args.x = AlignActivations(x, num_tokens, w.cols, &args.ldx, buf);
  args.num_tokens = num_tokens;
  args.w = w;
  args.y = y;
  if (num_tokens * w.rows * w.cols < kMinParallelMacs) {
    rows_fn(args, 0, w.rows);
    return;
  }
  ThreadPool::Default().ParallelFor(w.rows, kRowAlign, [&](int64_t begin, int64_t end) { rows_fn(args, begin, end); });
}

}  // namespace mmx::kernels::internal
