// ApplyRope, AVX2: the angles' cos/sin are computed once per token (std::cos/std::sin in fp32,
// exactly the reference's values) and reused for every head, whose rotation is vectorized over
// the pair index i. Single-threaded: it touches each element once and is cheap next to the
// projections around it.
#include <cmath>
#include <vector>

#include <immintrin.h>

#include "kernels/kernels.h"

namespace mmx::kernels {

void ApplyRope(float* x, int64_t num_tokens, int num_heads, int head_dim, int rotary_dim,
               const int64_t* positions, const float* inv_freq) {
  const int half = rotary_dim / 2;
  thread_local std::vector<float> cos_sin;
  cos_sin.resize(2 * static_cast<size_t>(half));
  float* c = cos_sin.data();
  float* s = c + half;
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int i = 0; i < half; ++i) {
      const float angle = static_cast<float>(positions[t]) * inv_freq[i];
      c[i] = std::cos(angle);
      s[i] = std::sin(angle);
    }
    for (int h = 0; h < num_heads; ++h) {
      float* lo = x + (t * num_heads + h) * head_dim;  // x[i]
      float* hi = lo + half;                             // x[i + half]
      int i = 0;
      for (; i + 8 <= half; i += 8) {
        const __m256 x0 = _mm256_loadu_ps(lo + i), x1 = _mm256_loadu_ps(hi + i);
        const __m256 cv = _mm256_loadu_ps(c + i), sv = _mm256_loadu_ps(s + i);
        _mm256_storeu_ps(lo + i, _mm256_sub_ps(_mm256_mul_ps(x0, cv), _mm256_mul_ps(x1, sv)));
        _mm256_storeu_ps(hi + i, _mm256_add_ps(_mm256_mul_ps(x1, cv), _mm256_mul_ps(x0, sv)));
      }
      for (; i < half; ++i) {
        const float x0 = lo[i], x1 = hi[i];
        lo[i] = x0 * c[i] - x1 * s[i];
        hi[i] = x1 * c[i] + x0 * s[i];
      }
    }
  }
}

}  // namespace mmx::kernels
