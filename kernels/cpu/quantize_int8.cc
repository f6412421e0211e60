// QuantizeInt8 (kernels.h): symmetric per-row int8 quantization of BF16/F16/F32 weights, run
// once per matrix at load. AVX2 baseline only: it reads each source row twice (max, then
// quantize; the second pass hits L1) and is bound by reading the source, so a wider ISA would not
// pay. Values equal reference::QuantizeInt8 bit for bit (same double division, same rounding).
#include <immintrin.h>

#include <algorithm>
#include <cmath>

#include "base/bf16.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {

// Elements idx .. idx+7 of the source (flat index), widened to fp32.
template <DType kD>
inline __m256 Load8(const void* data, int64_t idx) {
  if constexpr (kD == DType::kF32) {
    return _mm256_loadu_ps(static_cast<const float*>(data) + idx);
  } else {
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(static_cast<const uint16_t*>(data) + idx));
    if constexpr (kD == DType::kF16) return _mm256_cvtph_ps(h);
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));  // bf16: exact
  }
}

template <DType kD>
inline float Load1(const void* data, int64_t idx) {
  if constexpr (kD == DType::kF32) return static_cast<const float*>(data)[idx];
  else if constexpr (kD == DType::kF16) return F16ToFloat(static_cast<const uint16_t*>(data)[idx]);
  else return Bf16ToFloat(static_cast<const uint16_t*>(data)[idx]);
}

// The quotient in double: exact enough that rounding it never picks the farther integer (an fp32
// quotient can, by up to 127 * 2^-24 of a step, near half-integers), so the round trip error is
// at most scale / 2 exactly.
inline int8_t QuantizeOne(float v, float scale) {
  return static_cast<int8_t>(std::clamp(std::nearbyint(static_cast<double>(v) / scale), -127.0, 127.0));
}

template <DType kD>
void QuantizeRow(const void* data, int64_t cols, int64_t row, int8_t* q, float* scale_out) {
  const int64_t base = row * cols, full = cols / 32 * 32, full8 = cols / 8 * 8;
  const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  __m256 vmax = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k < full8; k += 8) vmax = _mm256_max_ps(vmax, _mm256_and_ps(Load8<kD>(data, base + k), abs_mask));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  float max_abs = 0.f;
  for (float v : lanes) max_abs = std::max(max_abs, v);
  for (; k < cols; ++k) max_abs = std::max(max_abs, std::fabs(Load1<kD>(data, base + k)));

  const float scale = max_abs / 127.f;
  *scale_out = scale;
  if (!(scale > 0.f)) {  // an all-zero row
    std::fill(q, q + cols, int8_t{0});
    return;
  }
  const __m256d vscale = _mm256_set1_pd(scale);
  const __m256i lo = _mm256_set1_epi32(-127), hi = _mm256_set1_epi32(127);
  auto quantize4 = [&](__m128 v) {  // see QuantizeOne; cvtpd rounds to nearest even
    return _mm256_cvtpd_epi32(_mm256_div_pd(_mm256_cvtps_pd(v), vscale));
  };
  auto quantize8 = [&](int64_t i) {
    const __m256 v = Load8<kD>(data, base + i);
    const __m256i r = _mm256_setr_m128i(quantize4(_mm256_castps256_ps128(v)), quantize4(_mm256_extractf128_ps(v, 1)));
    return _mm256_min_epi32(_mm256_max_epi32(r, lo), hi);
  };
  // 32 at a time: two saturating packs interleave the 128-bit lanes, one permute restores order.
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (k = 0; k < full; k += 32) {
    const __m256i ab = _mm256_packs_epi32(quantize8(k), quantize8(k + 8));
    const __m256i cd = _mm256_packs_epi32(quantize8(k + 16), quantize8(k + 24));
    const __m256i bytes = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(q + k), bytes);
  }
  for (; k < cols; ++k) q[k] = QuantizeOne(Load1<kD>(data, base + k), scale);
}

}  // namespace

void QuantizeInt8(const WeightView& w, int8_t* q, float* scales) {
  MMX_CHECK(w.dtype != DType::kI8);  // already quantized: the caller's mistake
  auto* row_fn = w.dtype == DType::kBF16  ? &QuantizeRow<DType::kBF16>
                 : w.dtype == DType::kF16 ? &QuantizeRow<DType::kF16>
                                          : &QuantizeRow<DType::kF32>;
  ThreadPool::Default().ParallelFor(w.rows, 16, [&](int64_t begin, int64_t end) {
    for (int64_t r = begin; r < end; ++r) row_fn(w.data, w.cols, r, q + r * w.cols, scales + r);
  });
}

}  // namespace mmx::kernels
