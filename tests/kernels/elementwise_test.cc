// RmsNorm, SiluInPlace, SiluMul and SigmoidMulInPlace: hand-worked values, then the fast paths
// against the reference over odd lengths (vector tails) and arguments wide enough to reach the
// saturated ends of exp.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace mmx::kernels {
namespace {

using testing::ExpectClose;
using testing::ForEachIsa;
using testing::RandomVector;

// Relative tolerance of the vectorized exp and of reordered fp32 sums, plus a floor far below
// any value that matters (sigmoid of -100 is 4e-44).
std::vector<float> RelTol(const std::vector<float>& ref, float rel) {
  std::vector<float> tol(ref.size());
  for (size_t i = 0; i < ref.size(); ++i) tol[i] = rel * std::fabs(ref[i]) + 1e-30f;
  return tol;
}

const int64_t kLengths[] = {1, 7, 15, 16, 17, 33, 100, 2047, 6144};

TEST(RmsNormTest, ComputesHandWorkedRow) {
  const std::vector<float> x = {3, 4}, gamma = {1, 2};
  // mean(x^2) = 12.5, so x / sqrt(12.5 + 0.5) * gamma.
  const float r = 1.f / std::sqrt(13.f);
  ForEachIsa([&](Isa) {
    std::vector<float> out(2);
    RmsNorm(x.data(), 1, 2, gamma.data(), 0.5f, out.data());
    EXPECT_NEAR(out[0], 3 * r, 1e-6f);
    EXPECT_NEAR(out[1], 8 * r, 1e-6f);
  });
}

TEST(RmsNormTest, MatchesReferenceOnOddWidthsAndInPlace) {
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    const int64_t tokens = 3;
    const std::vector<float> x = RandomVector(static_cast<size_t>(n * tokens), 10 + n, -4.f, 4.f);
    const std::vector<float> gamma = RandomVector(static_cast<size_t>(n), 20 + n, 0.5f, 1.5f);
    std::vector<float> expected(x.size());
    reference::RmsNorm(x.data(), tokens, n, gamma.data(), 1e-6f, expected.data());
    ForEachIsa([&](Isa) {
      std::vector<float> out(x.size());
      RmsNorm(x.data(), tokens, n, gamma.data(), 1e-6f, out.data());
      ExpectClose(out, expected, RelTol(expected, 4e-6f), "RmsNorm");
      std::vector<float> inplace = x;
      RmsNorm(inplace.data(), tokens, n, gamma.data(), 1e-6f, inplace.data());
      ExpectClose(inplace, expected, RelTol(expected, 4e-6f), "RmsNorm in place");
    });
  }
}

TEST(VecMathTest, ExpIsWithinOneMillionthOfStdExpAndKeepsSpecialValues) {
  double worst = 0;
  for (float x = -87.3f; x < 88.7f; x += 0.0137f) {
    alignas(32) float out[8];
    _mm256_store_ps(out, internal::Exp(_mm256_set1_ps(x)));
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::fabs(out[0] - want) / want);
  }
  EXPECT_LT(worst, 1e-6);
  alignas(32) float in[8] = {0.f, -0.f, 100.f, -110.f, INFINITY, -INFINITY, NAN, 88.7f};
  alignas(32) float out[8];
  _mm256_store_ps(out, internal::Exp(_mm256_load_ps(in)));
  EXPECT_EQ(out[0], 1.f);
  EXPECT_EQ(out[1], 1.f);
  EXPECT_EQ(out[2], INFINITY);
  EXPECT_EQ(out[3], 0.f);
  EXPECT_EQ(out[4], INFINITY);
  EXPECT_EQ(out[5], 0.f);
  EXPECT_TRUE(std::isnan(out[6]));
  EXPECT_NEAR(out[7] / std::exp(static_cast<double>(88.7f)), 1.0, 1e-6);
}

TEST(SiluTest, ComputesHandWorkedValues) {
  ForEachIsa([&](Isa) {
    std::vector<float> x = {0.f, 1.f, -1.f, 20.f, -100.f};
    SiluInPlace(x.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(x[0], 0.f);
    EXPECT_NEAR(x[1], 0.7310585786f, 1e-6f);
    EXPECT_NEAR(x[2], -0.2689414214f, 1e-6f);
    EXPECT_NEAR(x[3], 20.f, 1e-5f);
    EXPECT_NEAR(x[4], 0.f, 1e-30f);
    EXPECT_FALSE(std::isnan(x[4]));
  });
}

TEST(SiluTest, MatchesReferenceOnOddLengths) {
  for (int64_t n : kLengths) {
    SCOPED_TRACE(n);
    const std::vector<float> gate = RandomVector(static_cast<size_t>(n), 30 + n, -100.f, 100.f);
    const std::vector<float> up = RandomVector(static_cast<size_t>(n), 40 + n, -3.f, 3.f);
    std::vector<float> silu_ref = gate, mul_ref(gate.size()), sig_ref = up;
    reference::SiluInPlace(silu_ref.data(), n);
    reference::SiluMul(gate.data(), up.data(), n, mul_ref.data());
    reference::SigmoidMulInPlace(gate.data(), sig_ref.data(), n);
    ForEachIsa([&](Isa) {
      std::vector<float> silu = gate;
      SiluInPlace(silu.data(), n);
      ExpectClose(silu, silu_ref, RelTol(silu_ref, 3e-6f), "SiluInPlace");
      std::vector<float> mul(gate.size());
      SiluMul(gate.data(), up.data(), n, mul.data());
      ExpectClose(mul, mul_ref, RelTol(mul_ref, 3e-6f), "SiluMul");
      std::vector<float> alias = gate;  // out aliasing gate
      SiluMul(alias.data(), up.data(), n, alias.data());
      ExpectClose(alias, mul_ref, RelTol(mul_ref, 3e-6f), "SiluMul aliased");
      std::vector<float> sig = up;
      SigmoidMulInPlace(gate.data(), sig.data(), n);
      ExpectClose(sig, sig_ref, RelTol(sig_ref, 3e-6f), "SigmoidMulInPlace");
    });
  }
}

TEST(SigmoidMulTest, ComputesHandWorkedValues) {
  const std::vector<float> gate = {0.f, 2.f, -2.f};
  ForEachIsa([&](Isa) {
    std::vector<float> x = {4.f, 1.f, 1.f};
    SigmoidMulInPlace(gate.data(), x.data(), 3);
    EXPECT_NEAR(x[0], 2.f, 1e-6f);
    EXPECT_NEAR(x[1], 0.8807970780f, 1e-6f);
    EXPECT_NEAR(x[2], 0.1192029220f, 1e-6f);
  });
}

}  // namespace
}  // namespace mmx::kernels
