// Gemm row kernels for the AVX2+FMA+F16C baseline: 8-float vectors and 16 registers, so the
// batched tile is 2 rows x 6 tokens (12 accumulators + 2 weight vectors + 1 activation vector).
#include <immintrin.h>

// NOTE: I8 weights never reach these row kernels (gemm.cc sends them to gemm_int8.cc), so
// gemm_tile.h's dtype switch has no case for DType::kI8; -Wswitch would flag it at instantiation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wswitch"
#include "kernels/cpu/gemm_tile.h"
#pragma GCC diagnostic pop

namespace mmx::kernels::internal {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int kWidth = 8;
  static constexpr int kRows = 2;
  static constexpr int kMaxTokens = 6;

  static V Zero() { return _mm256_setzero_ps(); }
  static V LoadX(const float* p) { return _mm256_loadu_ps(p); }
  static V Add(V a, V b) { return _mm256_add_ps(a, b); }
  static V Fma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
  static float Sum(V v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }

  // See gemm_avx512.cc: even columns are the low halves of the 32-bit lanes, odd the high.
  static V LoadBf16(const uint16_t* p, int half) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return half == 0 ? _mm256_castsi256_ps(_mm256_slli_epi32(v, 16))
                     : _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static void LoadBf16Pair(const uint16_t* p, V* even, V* odd) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    *even = _mm256_castsi256_ps(_mm256_slli_epi32(v, 16));
    *odd = _mm256_castsi256_ps(_mm256_and_si256(v, _mm256_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static V LoadF16(const uint16_t* p, int half) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p + half * 8)));
  }
  static V LoadF32(const float* p, int half) { return _mm256_loadu_ps(p + half * 8); }
};

static_assert(2 * Avx2::kWidth == kGemmChunkAvx2);

}  // namespace

void GemmRowsAvx2(const GemmArgs& args, int64_t row_begin, int64_t row_end) {
  GemmRowsFor<Avx2>(args, row_begin, row_end);
}

}  // namespace mmx::kernels::internal
