// Int8 weight-only Gemm row kernels for AVX-512 (F, BW, VL, DQ): 16 int8 weights per load,
// sign-extended (vpmovsxbd) and converted (vcvtdq2ps) to 16 fp32 lanes. The batched tile is
// 4 rows x 6 tokens (24 accumulators + 4 weight vectors + 1 activation vector of 32 registers):
// each widened weight vector costs two instructions, so it is shared by more tokens than in the
// bf16 kernel's 4 x 4 tile.
// clang-format off
#include "kernels/cpu/avx512_intrin.h"  // first: see there
// clang-format on
#include "kernels/cpu/gemm_int8_tile.h"

namespace mmx::kernels::internal {
namespace {

struct Avx512Int8 {
  using V = __m512;
  static constexpr int kWidth = 16;
  static constexpr int kRows = 4;
  static constexpr int kMaxTokens = 6;

  static V Zero() { return _mm512_setzero_ps(); }
  static V Add(V a, V b) { return _mm512_add_ps(a, b); }
  static V Fma(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }
  // 16 -> 8 -> 4 -> 2 -> 1 lanes by in-register shuffles (no 512->256 casts, no reduce_add).
  static float Sum(V v) {
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0x4e));  // swap 256-bit halves
    v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, 0xb1));  // swap 128-bit lanes pairwise
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0x4e));        // swap 64-bit pairs in each lane
    v = _mm512_add_ps(v, _mm512_permute_ps(v, 0xb1));        // swap neighbours
    return _mm512_cvtss_f32(v);
  }

  static __mmask16 Mask(int n) { return static_cast<__mmask16>((1u << n) - 1); }
  static V LoadX(const float* p) { return _mm512_loadu_ps(p); }
  static V LoadXPart(const float* p, int n) { return _mm512_maskz_loadu_ps(Mask(n), p); }
  static V LoadQ(const int8_t* p) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))));
  }
  static V LoadQPart(const int8_t* p, int n) {
    return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(Mask(n), p)));
  }
};

}  // namespace

void GemmInt8RowsAvx512(const GemmInt8Args& args, int64_t row_begin, int64_t row_end) {
  GemmInt8RowsFor<Avx512Int8>(args, row_begin, row_end);
}

}  // namespace mmx::kernels::internal
