// Gemm row kernels for AVX-512 (F, BW, VL, DQ): 16-float vectors and 32 registers. The batched
// tile is 4 rows x 4 tokens (16 accumulators + 4 weight vectors + 1 activation vector); on Zen 4
// it measured as fast as 4 x 5 and 4 x 6 (about 92% of fp32 FMA peak with weights in cache), and
// 3- or 2-row tiles compiled to code half as fast.
// clang-format off
#include "kernels/cpu/avx512_intrin.h"  // first: see there
// clang-format on
// NOTE: I8 weights never reach these row kernels (gemm.cc sends them to gemm_int8.cc), so
// gemm_tile.h's dtype switch has no case for DType::kI8; -Wswitch would flag it at instantiation.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wswitch"
#include "kernels/cpu/gemm_tile.h"
#pragma GCC diagnostic pop

namespace mmx::kernels::internal {
namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kRows = 4;
  static constexpr int kMaxTokens = 4;

  static V Zero() { return _mm512_setzero_ps(); }
  static V LoadX(const float* p) { return _mm512_loadu_ps(p); }
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  static V Fma(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }
  static float Sum(V v) { return _mm512_reduce_add_ps(v); }

  // 32 bf16 = 16 little-endian pairs per 32-bit lane: the even column is the low half (shift it
  // up), the odd column is already the high half (clear the low half). Exact, no rounding.
  static V LoadBf16(const uint16_t* p, int half) {
    const __m512i v = _mm512_loadu_si512(p);
    return half == 0 ? _mm512_castsi512_ps(_mm512_slli_epi32(v, 16))
                     : _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static void LoadBf16Pair(const uint16_t* p, V* even, V* odd) {
    const __m512i v = _mm512_loadu_si512(p);
    *even = _mm512_castsi512_ps(_mm512_slli_epi32(v, 16));
    *odd = _mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32(static_cast<int>(0xffff0000u))));
  }
  static V LoadF16(const uint16_t* p, int half) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + half * 16)));
  }
  static V LoadF32(const float* p, int half) { return _mm512_loadu_ps(p + half * 16); }
};

static_assert(2 * Avx512::kWidth == kGemmChunkAvx512);

}  // namespace

void GemmRowsAvx512(const GemmArgs& args, int64_t row_begin, int64_t row_end) {
  GemmRowsFor<Avx512>(args, row_begin, row_end);
}

}  // namespace mmx::kernels::internal
