// One lightning-attention decode step for one head, written once over a vector-ISA traits class
// (instantiated in lightning.cc for AVX2 and lightning_avx512.cc for AVX-512). Include only there.
//
// Fused single pass over the state: for each key row a, S[a, :] = lambda*S[a, :] + k[a]*v[:] is
// computed in registers, stored once, and immediately used for o[:] += q[a]*S[a, :]. The state
// (64 KiB per head at D = 128) is therefore read and written exactly once per token, which is
// what bounds decode; v and the o accumulators of a column tile stay in registers.
#pragma once

#include <cstdint>

namespace mmx::kernels::internal {

// Traits provide: using V; kWidth; kMaxVectors (column tile, in vectors, that fits in
// registers twice); V Zero(); V Set1(float); V Load(const float*); void Store(float*, V);
// V Mul(V, V); V Fma(V a, V b, V c) = a*b + c.

// Columns [b0, b0 + NV*kWidth) of the step.
template <class T, int NV>
void DecodeColumns(const float* q, const float* k, const float* v, float lambda, float* S, int D, int b0,
                   float* o) {
  using V = typename T::V;
  V acc[NV], vv[NV];
  for (int j = 0; j < NV; ++j) {
    acc[j] = T::Zero();
    vv[j] = T::Load(v + b0 + j * T::kWidth);
  }
  const V l = T::Set1(lambda);
  for (int a = 0; a < D; ++a) {
    const V ka = T::Set1(k[a]), qa = T::Set1(q[a]);
    float* row = S + static_cast<int64_t>(a) * D + b0;
#pragma GCC unroll 8
    for (int j = 0; j < NV; ++j) {
      const V s = T::Fma(ka, vv[j], T::Mul(l, T::Load(row + j * T::kWidth)));
      T::Store(row + j * T::kWidth, s);
      acc[j] = T::Fma(qa, s, acc[j]);
    }
  }
  for (int j = 0; j < NV; ++j) T::Store(o + b0 + j * T::kWidth, acc[j]);
}

// The whole step for one head: S [D, D] updated in place, o [D] written.
template <class T>
void DecodeHead(const float* q, const float* k, const float* v, float lambda, float* S, int D, float* o) {
  int b0 = 0;
  for (; b0 + T::kMaxVectors * T::kWidth <= D; b0 += T::kMaxVectors * T::kWidth)
    DecodeColumns<T, T::kMaxVectors>(q, k, v, lambda, S, D, b0, o);
  for (; b0 + T::kWidth <= D; b0 += T::kWidth) DecodeColumns<T, 1>(q, k, v, lambda, S, D, b0, o);
  for (int b = b0; b < D; ++b) {  // columns past the last full vector
    float acc = 0;
    for (int a = 0; a < D; ++a) {
      float& s = S[static_cast<int64_t>(a) * D + b];
      s = lambda * s + k[a] * v[b];
      acc += q[a] * s;
    }
    o[b] = acc;
  }
}

}  // namespace mmx::kernels::internal
