// Lightning decode step with 16-float vectors: at D = 128 a whole state row (8 vectors), v and
// the 8 output accumulators fit in the 32 registers, so the state is walked row by row.
// clang-format off
#include "kernels/cpu/avx512_intrin.h"  // first: see there
// clang-format on
#include "kernels/cpu/lightning_decode.h"
#include "kernels/cpu/lightning_impl.h"

namespace mmx::kernels::internal {
namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kMaxVectors = 8;
  static V Zero() { return _mm512_setzero_ps(); }
  static V Set1(float x) { return _mm512_set1_ps(x); }
  static V Load(const float* p) { return _mm512_loadu_ps(p); }
  static void Store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
};

}  // namespace

void LightningDecodeHeadAvx512(const float* q, const float* k, const float* v, float lambda, float* S, int D,
                               float* o) {
  DecodeHead<Avx512>(q, k, v, lambda, S, D, o);
}

}  // namespace mmx::kernels::internal
