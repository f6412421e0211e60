// The I8 Gemm launcher: splits the output rows over ThreadPool::Default() and calls the int8 row
// kernel of the active ISA. gemm.cc's Gemm sends I8 weights here before any bf16/fp32 layout work:
// int8 columns widen in order, so the activations are used as they are.
#include "base/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_int8.h"

namespace mmx::kernels::internal {
namespace {

// Below this many multiply-adds a second thread costs more to wake than it saves (as gemm.cc).
constexpr int64_t kMinParallelMacs = int64_t{1} << 16;
// Ranges in multiples of 16 rows keep every thread on whole register tiles (4 or 2 rows).
constexpr int64_t kRowAlign = 16;

}  // namespace

void GemmInt8(const float* x, int64_t num_tokens, const WeightView& w, float* y) {
  auto* rows_fn = ActiveIsa() == Isa::kAvx512 ? &GemmInt8RowsAvx512 : &GemmInt8RowsAvx2;
  GemmInt8Args args;
  args.x = x;
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
