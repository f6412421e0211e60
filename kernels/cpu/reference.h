// Plain reference loops for every kernel in kernels/kernels.h: the oracle the tests compare the
// fast (SIMD, multithreaded) versions against. Written for obviousness, not speed: one thread, no
// intrinsics, the math of MODEL.md spelled out. Dot products and sums of squares accumulate in
// double so the oracle's own rounding is far below the tolerances the tests state.
#pragma once

#include <cstdint>

#include "kernels/kernels.h"

namespace mmx::kernels::reference {

// Same contracts as the mmx::kernels functions of the same name.
void Gemm(const float* x, int64_t num_tokens, const WeightView& w, float* y);
void RmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma, float eps,
             float* out);
void SiluInPlace(float* x, int64_t n);
void SiluMul(const float* gate, const float* up, int64_t n, float* out);
void SigmoidMulInPlace(const float* gate, float* x, int64_t n);
void ApplyRope(float* x, int64_t num_tokens, int num_heads, int head_dim, int rotary_dim,
               const int64_t* positions, const float* inv_freq);
void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k,
                     const float* v, int64_t total_len, float* out);
// n == 1: LightningRecurrence; n > 1: the block form of MODEL.md §3.4 with shape.block_size.
void LightningAttention(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                        float* out);
void RouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids,
                float* weights);
void QuantizeInt8(const WeightView& w, int8_t* q, float* scales);

// The defining recurrence of lightning attention, one token at a time whatever n is
// (S = lambda*S + k^T v; o = q S). Same arguments as LightningAttention; block_size is ignored.
void LightningRecurrence(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                         float* out);

// Element (row, col) of a weight matrix, converted to fp32 from its stored dtype (I8: the
// dequantized value scales[row] * q, rounded to fp32).
float WeightAt(const WeightView& w, int64_t row, int64_t col);

}  // namespace mmx::kernels::reference
