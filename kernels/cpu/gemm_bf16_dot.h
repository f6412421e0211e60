// The bf16-activation GEMM (ActivationPrecision::kBf16): activations rounded to bf16 once, then
// bf16 x bf16 dot products with fp32 accumulation (vdpbf16ps). Internal to kernels/cpu.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace mmx::kernels::internal {

// y[t, o] = sum_k bf16(x[t, k]) * w[o, k], w BF16. Requires Isa::kAvx512 (which includes
// AVX512_BF16). Multithreaded over output rows.
void GemmBf16DotAvx512(const float* x, int64_t num_tokens, const WeightView& w, float* y);

// The same for several problems (each with BF16 weights) in one pass over the thread pool: the
// row blocks of all of them are shared out together, so a layer's experts (a few tokens each)
// cost one pool round trip, not one per matrix.
void GemmBf16DotGroupAvx512(const GemmProblem* const* problems, int64_t count);

}  // namespace mmx::kernels::internal
