// Vectorized transcendental functions on AVX2 (8 x fp32), for the baseline translation units.
// Accuracy: a few ulp against std::exp over the whole fp32 range (relative error < 1e-6), with
// the same special values: overflow gives +inf, deep underflow gives 0 (results below the
// normal range, under 1.2e-38, are flushed to 0), NaN stays NaN.
#pragma once

#include <immintrin.h>

namespace mmx::kernels::internal {

inline __m256 Exp(__m256 x) {
  const __m256 kMax = _mm256_set1_ps(88.72283935546875f);   // above: exp overflows
  const __m256 kMin = _mm256_set1_ps(-87.33654022216797f);  // below: under FLT_MIN
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, kMin), kMax);
  // x = n*ln2 + r with |r| <= ln2/2; ln2 split in two so n*ln2_hi is exact (Cody-Waite).
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693145751953125f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(1.428606765330187045e-06f), r);
  // Taylor series to r^7: truncation error 5e-9 relative on |r| <= 0.347, below fp32 rounding.
  __m256 p = _mm256_set1_ps(1.f / 5040);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 720));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.f));
  // 2^n for n in [-126, 128] as two normal powers of two, 2^(n - n/2) * 2^(n/2).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  __m256 result = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
  result = _mm256_blendv_ps(result, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, kMax, _CMP_GT_OQ));
  result = _mm256_blendv_ps(result, _mm256_setzero_ps(), _mm256_cmp_ps(x, kMin, _CMP_LT_OQ));
  return _mm256_blendv_ps(result, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

// 1 / (1 + exp(-x)), with a true division: the reference's rounding, not an approximation.
inline __m256 Sigmoid(__m256 x) {
  const __m256 one = _mm256_set1_ps(1.f);
  return _mm256_div_ps(one, _mm256_add_ps(one, Exp(_mm256_sub_ps(_mm256_setzero_ps(), x))));
}

}  // namespace mmx::kernels::internal
