// Internal: per-ISA entry points of the lightning-attention decode step (lightning.cc,
// lightning_avx512.cc). Not part of the public API.
#pragma once

namespace mmx::kernels::internal {

// One token, one head: S [D, D] = lambda*S + k^T v in place; o [D] = q S.
void LightningDecodeHeadAvx2(const float* q, const float* k, const float* v, float lambda, float* S, int D,
                             float* o);
void LightningDecodeHeadAvx512(const float* q, const float* k, const float* v, float lambda, float* S, int D,
                               float* o);

}  // namespace mmx::kernels::internal
