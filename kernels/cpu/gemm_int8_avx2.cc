// Int8 weight-only Gemm row kernels for the AVX2+FMA baseline: 8 int8 weights per load,
// sign-extended (vpmovsxbd) and converted (vcvtdq2ps) to 8 fp32 lanes. With 16 registers the
// batched tile is 2 rows x 6 tokens (12 accumulators + 2 weight vectors + 1 activation vector),
// as in gemm_avx2.cc.
#include <immintrin.h>

#include <cstring>

#include "kernels/cpu/gemm_int8_tile.h"

namespace mmx::kernels::internal {
namespace {

struct Avx2Int8 {
  using V = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kRows = 2;
  static constexpr int kMaxTokens = 6;

  static V Zero() { return _mm256_setzero_ps(); }
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  static V Fma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
  static float Sum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  static V LoadX(const float* p) { return _mm256_loadu_ps(p); }
  static V LoadXPart(const float* p, int n) {
    alignas(32) float buf[kWidth] = {};
    std::memcpy(buf, p, static_cast<size_t>(n) * sizeof(float));
    return _mm256_load_ps(buf);
  }
  static V LoadQ(const int8_t* p) {
    return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p))));
  }
  static V LoadQPart(const int8_t* p, int n) {
    alignas(16) int8_t buf[16] = {};
    std::memcpy(buf, p, static_cast<size_t>(n));
    return LoadQ(buf);
  }
};

}  // namespace

void GemmInt8RowsAvx2(const GemmInt8Args& args, int64_t row_begin, int64_t row_end) {
  GemmInt8RowsFor<Avx2Int8>(args, row_begin, row_end);
}

}  // namespace mmx::kernels::internal
