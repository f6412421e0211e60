// RmsNorm and the activation kernels (SiLU, SwiGLU combine, sigmoid gate), AVX2. These are
// bandwidth-bound streams; AVX-512 would not make them faster on Zen 4, whose 512-bit units are
// two 256-bit halves. Long inputs are split over ThreadPool::Default().
#include <cmath>
#include <cstdint>

#include <immintrin.h>

#include "base/thread_pool.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {

using internal::Exp;
using internal::Sigmoid;

// Elementwise work below this many elements runs on the caller alone.
constexpr int64_t kMinParallelElements = 1 << 15;

// Runs fn(begin, end) over [0, n), in parallel when n is large enough to pay for it.
template <typename Fn>
void ForRange(int64_t n, Fn fn) {
  if (n < kMinParallelElements) {
    fn(int64_t{0}, n);
  } else {
    ThreadPool::Default().ParallelFor(n, 64, fn);
  }
}

// Applies the vector op to full vectors and the reference scalar op to the tail.
template <typename VecOp, typename ScalarOp>
void Stream(int64_t begin, int64_t end, VecOp vec, ScalarOp scalar) {
  int64_t i = begin;
  for (; i + 8 <= end; i += 8) vec(i);
  if (i < end) scalar(i, end);
}

}  // namespace

void RmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma, float eps,
             float* out) {
  auto rows = [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const float* xt = x + t * n;
      float* ot = out + t * n;
      // Four accumulators: independent FMA chains, and a shorter summation error than one.
      __m256 a[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
      int64_t i = 0;
      for (; i + 32 <= n; i += 32)
        for (int j = 0; j < 4; ++j) {
          const __m256 v = _mm256_loadu_ps(xt + i + 8 * j);
          a[j] = _mm256_fmadd_ps(v, v, a[j]);
        }
      for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(xt + i);
        a[0] = _mm256_fmadd_ps(v, v, a[0]);
      }
      alignas(32) float lanes[8];
      _mm256_store_ps(lanes, _mm256_add_ps(_mm256_add_ps(a[0], a[1]), _mm256_add_ps(a[2], a[3])));
      float ss = 0;
      for (float l : lanes) ss += l;
      for (; i < n; ++i) ss += xt[i] * xt[i];
      const float r = 1.f / std::sqrt(ss / static_cast<float>(n) + eps);
      const __m256 rv = _mm256_set1_ps(r);
      Stream(
          0, n,
          [&](int64_t k) {
            _mm256_storeu_ps(ot + k, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(xt + k), rv), _mm256_loadu_ps(gamma + k)));
          },
          [&](int64_t k0, int64_t k1) {
            for (int64_t k = k0; k < k1; ++k) ot[k] = xt[k] * r * gamma[k];
          });
    }
  };
  if (num_tokens * n < kMinParallelElements || num_tokens == 1) {
    rows(0, num_tokens);
  } else {
    ThreadPool::Default().ParallelFor(num_tokens, 1, rows);
  }
}

void SiluInPlace(float* x, int64_t n) {
  ForRange(n, [&](int64_t b, int64_t e) {
    Stream(
        b, e,
        [&](int64_t i) {
          const __m256 v = _mm256_loadu_ps(x + i);
          _mm256_storeu_ps(x + i, _mm256_mul_ps(v, Sigmoid(v)));
        },
        [&](int64_t i0, int64_t i1) { reference::SiluInPlace(x + i0, i1 - i0); });
  });
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  ForRange(n, [&](int64_t b, int64_t e) {
    Stream(
        b, e,
        [&](int64_t i) {
          const __m256 g = _mm256_loadu_ps(gate + i);
          _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(g, Sigmoid(g)), _mm256_loadu_ps(up + i)));
        },
        [&](int64_t i0, int64_t i1) { reference::SiluMul(gate + i0, up + i0, i1 - i0, out + i0); });
  });
}

void SigmoidMulInPlace(const float* gate, float* x, int64_t n) {
  ForRange(n, [&](int64_t b, int64_t e) {
    Stream(
        b, e,
        [&](int64_t i) {
          _mm256_storeu_ps(x + i, _mm256_mul_ps(Sigmoid(_mm256_loadu_ps(gate + i)), _mm256_loadu_ps(x + i)));
        },
        [&](int64_t i0, int64_t i1) { reference::SigmoidMulInPlace(gate + i0, x + i0, i1 - i0); });
  });
}

void RowSumOfSquares(const float* x, int64_t num_tokens, int64_t width, double* sums) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    double sum = 0;
    for (int64_t i = 0; i < width; ++i) sum += static_cast<double>(x[t * width + i]) * x[t * width + i];
    sums[t] = sum;
  }
}

void NormalizeRows(const float* x, int64_t num_tokens, int64_t width, const double* total_sums, int64_t full_width,
                   const float* gamma, float eps, float* out) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float inv = static_cast<float>(1.0 / std::sqrt(total_sums[t] / static_cast<double>(full_width) + eps));
    for (int64_t i = 0; i < width; ++i) out[t * width + i] = x[t * width + i] * inv * gamma[i];
  }
}

}  // namespace mmx::kernels
