// Int8 weight-only Gemm and the int8 quantizer: the fast paths against the reference loops at
// every SIMD level, on odd shapes (tails of every vector width, token counts 1..40 that do not
// fill register tiles); the quantizer's round-trip error bound.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "base/bf16.h"
#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace mmx::kernels {
namespace {

using testing::ExpectClose;
using testing::ForEachIsa;
using testing::RandomVector;
using testing::TestWeights;

// An I8 matrix made by the reference quantizer from random weights.
struct Int8Weights {
  int64_t rows, cols;
  std::vector<int8_t> q;
  std::vector<float> scales;

  Int8Weights(int64_t r, int64_t c, uint32_t seed)
      : rows(r), cols(c), q(static_cast<size_t>(r * c)), scales(static_cast<size_t>(r)) {
    TestWeights source(DType::kF32, r, c, seed);
    reference::QuantizeInt8(source.View(), q.data(), scales.data());
  }
  WeightView View() const { return WeightView{q.data(), DType::kI8, rows, cols, scales.data()}; }
};

// Gemm against reference::Gemm (which sums the dequantized weights in double) with a tolerance
// of 1e-5 * sum_i |x_i * w_oi|: fp32 accumulation in any order stays well inside it here.
void CheckGemmInt8(int64_t rows, int64_t cols, int64_t tokens, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "rows " << rows << " cols " << cols << " tokens " << tokens);
  const Int8Weights w(rows, cols, seed);
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), seed + 1);
  std::vector<float> expected(static_cast<size_t>(tokens * rows));
  reference::Gemm(x.data(), tokens, w.View(), expected.data());
  std::vector<float> tol(expected.size());
  for (int64_t t = 0; t < tokens; ++t)
    for (int64_t o = 0; o < rows; ++o) {
      double s = 0;
      for (int64_t i = 0; i < cols; ++i) s += std::fabs(x[t * cols + i] * reference::WeightAt(w.View(), o, i));
      tol[t * rows + o] = static_cast<float>(1e-5 * s + 1e-30);
    }
  ForEachIsa([&](Isa) {
    std::vector<float> y(expected.size(), std::numeric_limits<float>::quiet_NaN());
    Gemm(x.data(), tokens, w.View(), y.data());
    ExpectClose(y, expected, tol, "Gemm I8");
  });
}

TEST(GemmInt8Test, MatchesReferenceOnOddShapes) {
  uint32_t seed = 1;
  for (int64_t rows : {1, 3, 17, 65})
    for (int64_t cols : {1, 7, 8, 15, 16, 33, 64, 100, 2047})
      for (int64_t tokens : {1, 2, 3, 5, 6, 7, 13, 40}) CheckGemmInt8(rows, cols, tokens, seed++);
}

TEST(GemmInt8Test, MatchesReferenceForEveryTokenCountUpTo40) {
  // Every tile split of the batched kernel (6-token tiles on both ISAs, 4 or 2 rows).
  for (int64_t tokens = 1; tokens <= 40; ++tokens) CheckGemmInt8(23, 201, tokens, 100 + static_cast<uint32_t>(tokens));
}

TEST(GemmInt8Test, MatchesReferenceWhenTokensSpanSeveralBlocks) {
  CheckGemmInt8(37, 515, 150, 99);  // 64-token blocks, a ragged last one
}

TEST(GemmInt8Test, MatchesReferenceOnManyRowsSplitAcrossThreads) {
  CheckGemmInt8(1031, 256, 1, 7);
  CheckGemmInt8(1031, 256, 9, 8);
  CheckGemmInt8(2048, 2048, 1, 9);  // the medium model's expert shape, decode
}

TEST(GemmInt8Test, MatchesReferenceWhateverTheActivationsAlignment) {
  // The launcher copies x to 64-byte aligned rows unless it is aligned already: both paths.
  for (int64_t cols : {64, 100}) {
    for (int64_t tokens : {1, 5}) {
      const Int8Weights w(33, cols, 11);
      const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 12);
      std::vector<float> expected(static_cast<size_t>(tokens * 33));
      reference::Gemm(x.data(), tokens, w.View(), expected.data());
      std::vector<float> storage(x.size() + 32);
      float* aligned = storage.data() + (16 - reinterpret_cast<uintptr_t>(storage.data()) / 4 % 16) % 16;
      for (int64_t offset : {0, 1, 4, 15}) {
        SCOPED_TRACE(::testing::Message() << "cols " << cols << " tokens " << tokens << " offset " << offset);
        std::copy(x.begin(), x.end(), aligned + offset);
        ForEachIsa([&](Isa) {
          std::vector<float> y(expected.size());
          Gemm(aligned + offset, tokens, w.View(), y.data());
          ExpectClose(y, expected, {1e-4f}, "Gemm I8");
        });
      }
    }
  }
}

TEST(GemmInt8Test, ComputesHandWorkedProduct) {
  // q = [[1, -2, 3], [127, 0, -127]], scales [0.5, 2]; x = [[3, 4, 1], [1, 0, 2]].
  const std::vector<int8_t> q = {1, -2, 3, 127, 0, -127};
  const std::vector<float> scales = {0.5f, 2.f};
  const std::vector<float> x = {3, 4, 1, 1, 0, 2};
  ForEachIsa([&](Isa) {
    std::vector<float> y(4, -7.f);
    Gemm(x.data(), 2, WeightView{q.data(), DType::kI8, 2, 3, scales.data()}, y.data());
    // Row 0: 0.5 * (3 - 8 + 3) = -1, 0.5 * (1 + 6) = 3.5; row 1: 2 * (381 - 127) = 508, 2 * (127 - 254) = -254.
    EXPECT_EQ(y, (std::vector<float>{-1.f, 508.f, 3.5f, -254.f}));
  });
}

TEST(GemmInt8Test, KeepsActivationsInFp32EvenInBf16ActivationMode) {
  // x = 1 + 2^-12 is not representable in bf16; int8 is weight-only, so no mode rounds it.
  const float xv = 1.f + std::ldexp(1.f, -12);
  std::vector<float> x(8, xv);
  const std::vector<int8_t> q(8, 1);
  const float scale = 1.f;
  ScopedActivationPrecision bf16(ActivationPrecision::kBf16);
  ForEachIsa([&](Isa) {
    float y = 0;
    Gemm(x.data(), 1, WeightView{q.data(), DType::kI8, 1, 8, &scale}, &y);
    EXPECT_EQ(y, 8 * xv);
    std::vector<float> y2(2);
    std::vector<float> x2(16, xv);
    Gemm(x2.data(), 2, WeightView{q.data(), DType::kI8, 1, 8, &scale}, y2.data());
    EXPECT_EQ(y2, (std::vector<float>{8 * xv, 8 * xv}));
  });
}

TEST(GemmInt8Test, RowsViewCarriesItsScales) {
  const Int8Weights w(10, 48, 5);
  const std::vector<float> x = RandomVector(48, 6);
  std::vector<float> all(10), part(4);
  reference::Gemm(x.data(), 1, w.View(), all.data());
  const WeightView rows = w.View().Rows(3, 7);
  EXPECT_EQ(rows.scales, w.scales.data() + 3);
  ForEachIsa([&](Isa) {
    Gemm(x.data(), 1, rows, part.data());
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(part[i], all[3 + i], 1e-5f) << i;
  });
}

class QuantizeInt8Test : public ::testing::TestWithParam<DType> {};

TEST_P(QuantizeInt8Test, EqualsReferenceAndBoundsTheRoundTripError) {
  for (int64_t cols : {1, 7, 31, 32, 33, 100, 2047}) {
    SCOPED_TRACE(::testing::Message() << "cols " << cols);
    const int64_t rows = 19;
    TestWeights w(GetParam(), rows, cols, static_cast<uint32_t>(cols));
    std::vector<int8_t> q(static_cast<size_t>(rows * cols)), q_ref(q.size());
    std::vector<float> scales(static_cast<size_t>(rows)), scales_ref(scales.size());
    QuantizeInt8(w.View(), q.data(), scales.data());
    reference::QuantizeInt8(w.View(), q_ref.data(), scales_ref.data());
    EXPECT_EQ(q, q_ref);
    EXPECT_EQ(scales, scales_ref);
    for (int64_t o = 0; o < rows; ++o) {
      float max_abs = 0;
      int max_q = 0;
      for (int64_t i = 0; i < cols; ++i) {
        const double v = reference::WeightAt(w.View(), o, i);
        const double back = static_cast<double>(scales[o]) * q[o * cols + i];  // exact in double
        ASSERT_LE(std::fabs(v - back), scales[o] * 0.5) << "row " << o << " col " << i;
        max_abs = std::max(max_abs, static_cast<float>(std::fabs(v)));
        max_q = std::max(max_q, std::abs(static_cast<int>(q[o * cols + i])));
      }
      EXPECT_EQ(scales[o], max_abs / 127.f);
      EXPECT_EQ(max_q, 127);  // the largest |w| of every row maps to +-127
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllSourceDTypes, QuantizeInt8Test,
                         ::testing::Values(DType::kBF16, DType::kF16, DType::kF32),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(QuantizeInt8Test, ZeroRowGetsZeroScaleAndZeros) {
  // Row 1: scale 254 / 127 = 2 exactly; 100 -> 50, 54 -> 27, 1.2 -> 0.6 -> 1.
  const std::vector<float> w = {0, 0, 0, 0, 100, -254, 54, 1.2f};
  std::vector<int8_t> q(8, 9);
  std::vector<float> scales(2, -1.f);
  QuantizeInt8(WeightView{w.data(), DType::kF32, 2, 4}, q.data(), scales.data());
  EXPECT_EQ(scales, (std::vector<float>{0.f, 2.f}));
  EXPECT_EQ(q, (std::vector<int8_t>{0, 0, 0, 0, 50, -127, 27, 1}));
}

}  // namespace
}  // namespace mmx::kernels
