// The Gemm launcher: lays the activations out for the row kernels, splits the output rows over
// ThreadPool::Default() and calls the row kernel of the active ISA.
#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "base/thread_pool.h"
#include "base/bf16.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_amx.h"
#include "kernels/cpu/gemm_bf16_dot.h"
#include "kernels/cpu/gemm_impl.h"
#include "kernels/cpu/gemm_int8.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {

using internal::GemmArgs;

// Copies x [num_tokens, cols] into buf as [num_tokens, ldx], zero padded to ldx and 64-byte
// aligned (activation loads that straddle cache lines cost 20-25% in the L1-bound inner loops);
// for BF16 weights each chunk is split into its even then its odd columns (the order
// gemm_tile.h's bf16 loads produce).
const float* PrepareActivations(const float* x, int64_t num_tokens, int64_t cols, DType dtype, int64_t chunk,
                                int64_t* ldx, std::vector<float>& buf) {
  const int64_t ld = (cols + chunk - 1) / chunk * chunk;
  *ldx = ld;
  constexpr size_t kAlignFloats = 16;  // 64 bytes
  buf.assign(static_cast<size_t>(num_tokens * ld) + kAlignFloats, 0.f);
  float* base = buf.data();
  base += (kAlignFloats - reinterpret_cast<uintptr_t>(base) / sizeof(float) % kAlignFloats) % kAlignFloats;
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* src = x + t * cols;
    float* dst = base + t * ld;
    if (dtype != DType::kBF16) {
      std::memcpy(dst, src, static_cast<size_t>(cols) * sizeof(float));
      continue;
    }
    const int64_t half = chunk / 2;
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t chunk_base = k / chunk * chunk, j = k - chunk_base;
      dst[chunk_base + (j & 1) * half + j / 2] = src[k];
    }
  }
  return base;
}

// AMX takes BF16 weights whose rows split into whole 32-column tiles, from a few tokens on. One
// token (a GEMV) stays on AVX-512, which streams the weights at the read bandwidth; with fp32
// activations (three products per weight tile) AVX-512 also keeps up to 4 tokens, where it ran
// at 1.1-1.2x AMX's rate, and AMX takes over from 8 (1.3x at 8, 1.7x at 16 and 32). With bf16
// activations AMX was ahead from 2 tokens (1.1-2.5x the vdpbf16ps path). docs/benchmarks.md.
int64_t AmxMinTokens() { return CurrentActivationPrecision() == ActivationPrecision::kBf16 ? 2 : 8; }

bool TakesAmx(const WeightView& w, int64_t num_tokens) {
  return ActiveIsa() == Isa::kAmx && num_tokens >= AmxMinTokens() && w.dtype == DType::kBF16 &&
         w.cols % internal::kAmxK == 0;
}

// The AMX path for several problems (each TakesAmx), their 16-row blocks shared out in one pass.
void GemmAmxGroup(const GemmProblem* const* problems, int64_t count) {
  thread_local std::vector<std::vector<uint16_t>> packed;
  if (static_cast<int64_t>(packed.size()) < count) packed.resize(count);
  std::vector<internal::AmxPackedActivations> x(count);
  std::vector<int64_t> first_block(count + 1, 0);
  int64_t macs = 0, widest = 0;
  for (int64_t i = 0; i < count; ++i) {
    const GemmProblem& p = *problems[i];
    const int parts = CurrentActivationPrecision() == ActivationPrecision::kBf16 ? 1 : 3;
    x[i] = internal::PackAmxActivations(p.x, p.num_tokens, p.w.cols, parts, packed[i]);
    first_block[i + 1] = first_block[i] + (p.w.rows + internal::kAmxRows - 1) / internal::kAmxRows;
    macs += p.num_tokens * p.w.rows * p.w.cols;
    widest = std::max(widest, p.w.cols);
  }
  // One padding buffer per pool thread for a last block of fewer than 16 rows.
  const size_t pad_elems = static_cast<size_t>(internal::kAmxRows * widest);
  internal::RunRowBlocks(
      first_block, internal::kAmxRows, macs, [&](size_t i) { return problems[i]->w.rows; },
      [&](size_t i, int64_t row_begin, int64_t row_end) {
        thread_local std::vector<uint16_t> pad;
        if (pad.size() < pad_elems) pad.resize(pad_elems);
        const GemmProblem& p = *problems[i];
        internal::GemmRowsAmx(x[i], static_cast<const uint16_t*>(p.w.data), p.w.rows, p.y, row_begin, row_end,
                              pad.data());
      });
}

}  // namespace

void GemmGroup(const GemmProblem* problems, int64_t count) {
  const bool avx512 = Avx512Active();
  const bool bf16_mode = CurrentActivationPrecision() == ActivationPrecision::kBf16;
  std::vector<const GemmProblem*> grouped, bf16_dot, amx;
  for (int64_t i = 0; i < count; ++i) {
    const GemmProblem& p = problems[i];
    const bool nonempty = p.num_tokens > 0 && p.w.rows > 0 && p.w.cols > 0;
    if (nonempty && TakesAmx(p.w, p.num_tokens)) {
      amx.push_back(&p);
    } else if (nonempty && avx512 && bf16_mode && p.num_tokens > 1 && p.w.dtype == DType::kBF16) {
      bf16_dot.push_back(&p);  // vdpbf16ps, grouped the same way below
    } else if (nonempty && p.w.dtype != DType::kI8 && !(bf16_mode && p.num_tokens > 1 && p.w.dtype == DType::kBF16)) {
      grouped.push_back(&p);
    } else {
      Gemm(p.x, p.num_tokens, p.w, p.y);
    }
  }
  if (!amx.empty()) GemmAmxGroup(amx.data(), static_cast<int64_t>(amx.size()));
  if (!bf16_dot.empty()) internal::GemmBf16DotGroupAvx512(bf16_dot.data(), static_cast<int64_t>(bf16_dot.size()));
  if (grouped.empty()) return;
  const int64_t chunk = avx512 ? internal::kGemmChunkAvx512 : internal::kGemmChunkAvx2;
  auto* rows_fn = avx512 ? &internal::GemmRowsAvx512 : &internal::GemmRowsAvx2;
  // Called from the caller's thread, never inside a pool job (as Gemm): per-thread buffers.
  thread_local std::vector<std::vector<float>> bufs;
  if (bufs.size() < grouped.size()) bufs.resize(grouped.size());
  constexpr int64_t kBlockRows = 8;  // whole register tiles per thread, as in Gemm
  std::vector<GemmArgs> args(grouped.size());
  std::vector<int64_t> first_block(grouped.size() + 1, 0);
  int64_t macs = 0;
  for (size_t i = 0; i < grouped.size(); ++i) {
    const GemmProblem& p = *grouped[i];
    args[i].x = PrepareActivations(p.x, p.num_tokens, p.w.cols, p.w.dtype, chunk, &args[i].ldx, bufs[i]);
    args[i].num_tokens = p.num_tokens;
    args[i].w = p.w;
    args[i].y = p.y;
    first_block[i + 1] = first_block[i] + (p.w.rows + kBlockRows - 1) / kBlockRows;
    macs += p.num_tokens * p.w.rows * p.w.cols;
  }
  internal::RunRowBlocks(
      first_block, kBlockRows, macs, [&](size_t i) { return args[i].w.rows; },
      [&](size_t i, int64_t row_begin, int64_t row_end) { rows_fn(args[i], row_begin, row_end); });
}

void Gemm(const float* x, int64_t num_tokens, const WeightView& w, float* y) {
  if (num_tokens <= 0 || w.rows <= 0) return;
  if (w.cols == 0) {
    std::fill(y, y + num_tokens * w.rows, 0.f);
    return;
  }
  if (w.dtype == DType::kI8) {  // weight-only int8: its own kernels, activations always fp32
    internal::GemmInt8(x, num_tokens, w, y);
    return;
  }
  if (TakesAmx(w, num_tokens)) {
    const GemmProblem problem{x, num_tokens, w, y};
    const GemmProblem* one = &problem;
    GemmAmxGroup(&one, 1);
    return;
  }
  const bool avx512 = Avx512Active();
  // Batched bf16-activation mode (kernels.h): vdpbf16ps where the CPU has it; elsewhere the
  // same math through the fp32 path on activations rounded to bf16.
  thread_local std::vector<float> rounded;
  if (num_tokens > 1 && w.dtype == DType::kBF16 && CurrentActivationPrecision() == ActivationPrecision::kBf16) {
    if (avx512) {
      internal::GemmBf16DotAvx512(x, num_tokens, w, y);
      return;
    }
    rounded.resize(static_cast<size_t>(num_tokens * w.cols));
    for (size_t i = 0; i < rounded.size(); ++i) rounded[i] = Bf16ToFloat(FloatToBf16(x[i]));
    x = rounded.data();
  }
  const int64_t chunk = avx512 ? internal::kGemmChunkAvx512 : internal::kGemmChunkAvx2;
  auto* rows_fn = avx512 ? &internal::GemmRowsAvx512 : &internal::GemmRowsAvx2;
  // The launcher runs on the caller's thread (never inside a pool job), so one buffer per
  // calling thread is enough and its allocation is reused across calls.
  thread_local std::vector<float> buf;
  GemmArgs args;
  args.x = PrepareActivations(x, num_tokens, w.cols, w.dtype, chunk, &args.ldx, buf);
  args.num_tokens = num_tokens;
  args.w = w;
  args.y = y;
  if (num_tokens * w.rows * w.cols < internal::kMinParallelMacs) {
    rows_fn(args, 0, w.rows);
    return;
  }
  // Ranges in multiples of 8 rows keep every thread on whole register tiles.
  ThreadPool::Default().ParallelFor(w.rows, 8, [&](int64_t begin, int64_t end) { rows_fn(args, begin, end); });
}

}  // namespace mmx::kernels
