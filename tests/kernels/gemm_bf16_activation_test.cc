// ActivationPrecision::kBf16: batched Gemm with BF16 weights multiplies bf16-rounded activations.
// Checked against a double-precision loop over exactly those bf16 values, on odd sizes, at every
// SIMD level (AVX2 has no vdpbf16ps and rounds then runs the fp32 path).
#include <cmath>
#include <vector>

#include "base/bf16.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {

std::vector<float> Random(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (float& x : v) {
    s = s * 1664525u + 1013904223u;
    x = (static_cast<float>(s >> 8) / 16777216.f) * 2.f - 1.f;
  }
  return v;
}

struct Case {
  int64_t rows, cols, tokens;
};

TEST(GemmBf16ActivationTest, MatchesBf16RoundedReferenceOnOddSizes) {
  for (Isa isa : SupportedIsas()) {
    ScopedIsa scoped_isa(isa);
    for (Case c : {Case{1, 1, 2}, Case{3, 31, 3}, Case{5, 33, 5}, Case{65, 100, 17}, Case{130, 2047, 4},
                   Case{64, 2048, 32}, Case{7, 64, 9}}) {
      std::vector<float> wf = Random(c.rows * c.cols, 1);
      std::vector<uint16_t> w(wf.size());
      for (size_t i = 0; i < w.size(); ++i) w[i] = FloatToBf16(wf[i]);
      std::vector<float> x = Random(c.tokens * c.cols, 2);
      std::vector<float> y(c.tokens * c.rows, -1.f);
      {
        ScopedActivationPrecision bf16(ActivationPrecision::kBf16);
        Gemm(x.data(), c.tokens, WeightView{w.data(), DType::kBF16, c.rows, c.cols}, y.data());
      }
      for (int64_t t = 0; t < c.tokens; ++t) {
        for (int64_t o = 0; o < c.rows; ++o) {
          double want = 0, magnitude = 0;
          for (int64_t k = 0; k < c.cols; ++k) {
            const double term = static_cast<double>(Bf16ToFloat(FloatToBf16(x[t * c.cols + k]))) *
                                Bf16ToFloat(w[o * c.cols + k]);
            want += term;
            magnitude += std::fabs(term);
          }
          ASSERT_NEAR(y[t * c.rows + o], want, 1e-5 * magnitude + 1e-6)
              << IsaName(isa) << " rows " << c.rows << " cols " << c.cols << " t " << t << " o " << o;
        }
      }
    }
  }
}

TEST(GemmBf16ActivationTest, DiffersFromFp32ModeOnlyByActivationRounding) {
  // Same inputs in both modes: the bf16 mode must not equal fp32 bit for bit (it rounds), and the
  // fp32 mode must be unaffected once the scope ends.
  const int64_t rows = 40, cols = 300, tokens = 6;
  std::vector<float> wf = Random(rows * cols, 3);
  std::vector<uint16_t> w(wf.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = FloatToBf16(wf[i]);
  std::vector<float> x = Random(tokens * cols, 4);
  std::vector<float> exact(tokens * rows), rounded(tokens * rows), again(tokens * rows);
  const WeightView view{w.data(), DType::kBF16, rows, cols};
  Gemm(x.data(), tokens, view, exact.data());
  {
    ScopedActivationPrecision bf16(ActivationPrecision::kBf16);
    EXPECT_EQ(CurrentActivationPrecision(), ActivationPrecision::kBf16);
    Gemm(x.data(), tokens, view, rounded.data());
  }
  EXPECT_EQ(CurrentActivationPrecision(), ActivationPrecision::kFp32);
  Gemm(x.data(), tokens, view, again.data());
  EXPECT_EQ(exact, again);
  double max_diff = 0;
  for (size_t i = 0; i < exact.size(); ++i) max_diff = std::max(max_diff, std::fabs(double(exact[i]) - rounded[i]));
  EXPECT_GT(max_diff, 0.0);
  EXPECT_LT(max_diff, 0.05);  // bf16 keeps 8 bits: |x| <= 1, 300 terms
}

}  // namespace
}  // namespace mmx::kernels
