// Gemm: the fast paths against the reference loop for every weight dtype, SIMD level and a spread
// of odd shapes (tails of every vector width, token counts that do not fill a register tile).
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/bf16.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/reference.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace mmx::kernels {
namespace {

using testing::ExpectClose;
using testing::ForEachIsa;
using testing::RandomVector;
using testing::TestWeights;

// Checks Gemm against the reference with a tolerance scaled by sum_i |x_i * w_oi|: fp32
// accumulation in any order stays well inside 1e-5 of that for the sizes used here.
void CheckGemm(DType dtype, int64_t rows, int64_t cols, int64_t tokens, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " rows " << rows << " cols " << cols
                                    << " tokens " << tokens);
  TestWeights w(dtype, rows, cols, seed);
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
    ExpectClose(y, expected, tol, "Gemm");
  });
}

class GemmDTypeTest : public ::testing::TestWithParam<DType> {};

TEST_P(GemmDTypeTest, MatchesReferenceOnOddShapes) {
  uint32_t seed = 1;
  for (int64_t rows : {1, 3, 17, 65})
    for (int64_t cols : {1, 7, 16, 33, 100, 2047})
      for (int64_t tokens : {1, 2, 3, 4, 5, 8, 13, 32, 40}) CheckGemm(GetParam(), rows, cols, tokens, seed++);
}

TEST_P(GemmDTypeTest, MatchesReferenceWhenTokensSpanSeveralTiles) {
  // Prefill-sized batches are tiled over tokens; 150 tokens leaves a ragged last tile.
  CheckGemm(GetParam(), 37, 515, 150, 99);
}

TEST_P(GemmDTypeTest, MatchesReferenceOnManyRowsSplitAcrossThreads) {
  CheckGemm(GetParam(), 1031, 256, 1, 7);
  CheckGemm(GetParam(), 1031, 256, 9, 8);
}

INSTANTIATE_TEST_SUITE_P(AllDTypes, GemmDTypeTest,
                         ::testing::Values(DType::kBF16, DType::kF16, DType::kF32),
                         [](const auto& info) { return std::string(DTypeName(info.param)); });

TEST(GemmTest, MatchesReferenceAtEveryWeightAlignment) {
  // Weights are read in place wherever the checkpoint's mmap puts them: every element offset
  // within a cache line (and row lengths of whole and partial vector chunks) must give the same
  // result.
  for (DType dtype : {DType::kBF16, DType::kF32}) {
    const int64_t esize = static_cast<int64_t>(DTypeSize(dtype));
    for (int64_t cols : {16, 32, 96, 512}) {
      const int64_t rows = 5;
      TestWeights src(dtype, rows, cols, static_cast<uint32_t>(cols));
      const char* src_bytes = dtype == DType::kF32 ? reinterpret_cast<const char*>(src.full.data())
                                                   : reinterpret_cast<const char*>(src.half.data());
      const size_t bytes = static_cast<size_t>(rows * cols * esize);
      std::vector<char> storage(bytes + 256);
      for (int64_t offset = 0; offset < 128; offset += esize) {
        SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " cols " << cols << " offset " << offset);
        char* base = storage.data() + (64 - reinterpret_cast<uintptr_t>(storage.data()) % 64) % 64 + offset;
        std::memcpy(base, src_bytes, bytes);
        const WeightView view{base, dtype, rows, cols};
        for (int64_t tokens : {1, 3}) {
          const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), 3);
          std::vector<float> expected(static_cast<size_t>(tokens * rows));
          reference::Gemm(x.data(), tokens, view, expected.data());
          ForEachIsa([&](Isa) {
            std::vector<float> y(expected.size(), std::numeric_limits<float>::quiet_NaN());
            Gemm(x.data(), tokens, view, y.data());
            ExpectClose(y, expected, {2e-5f * static_cast<float>(cols)}, "Gemm");
          });
        }
      }
    }
  }
}

TEST(GemmTest, ComputesHandWorkedBf16Product) {
  // w = [[1, 2, -3], [0.5, -1, 4]], x = [[3, 4, 1], [1, 0, 2]]; all values exact in bf16.
  const std::vector<uint16_t> w = {FloatToBf16(1), FloatToBf16(2), FloatToBf16(-3),
                                   FloatToBf16(0.5f), FloatToBf16(-1), FloatToBf16(4)};
  const std::vector<float> x = {3, 4, 1, 1, 0, 2};
  ForEachIsa([&](Isa) {
    std::vector<float> y(4, -7.f);
    Gemm(x.data(), 2, WeightView{w.data(), DType::kBF16, 2, 3}, y.data());
    EXPECT_EQ(y, (std::vector<float>{8.f, 1.5f, -5.f, 8.5f}));
  });
}

TEST(GemmTest, KeepsActivationsInFp32) {
  // x = 1 + 2^-12 is not representable in bf16: a kernel that rounds activations to bf16 would
  // return 1.0 instead of the fp32 product.
  const float xv = 1.f + std::ldexp(1.f, -12);
  const std::vector<uint16_t> w = {FloatToBf16(1.f)};
  ForEachIsa([&](Isa) {
    float y = 0;
    Gemm(&xv, 1, WeightView{w.data(), DType::kBF16, 1, 1}, &y);
    EXPECT_EQ(y, xv);
  });
}

TEST(GemmTest, RowsViewReadsOnlyItsRows) {
  TestWeights w(DType::kBF16, 10, 48, 5);
  const std::vector<float> x = RandomVector(48, 6);
  std::vector<float> all(10), part(4);
  reference::Gemm(x.data(), 1, w.View(), all.data());
  ForEachIsa([&](Isa) {
    Gemm(x.data(), 1, w.View().Rows(3, 7), part.data());
    for (int i = 0; i < 4; ++i) EXPECT_NEAR(part[i], all[3 + i], 1e-5f) << i;
  });
}

// With AMX a token's outputs are bit for bit the same in every batch AMX takes (the same tiles in
// the same order, gemm_amx.h). The AVX2 and AVX-512 paths do not promise it: their register tiles
// sum in an order that depends on the token count. Runs where the CPU has AMX;
// gemm_amx_emulated_test.cc checks the kernel's logic everywhere.
TEST(GemmTest, WithAmxATokensOutputsDoNotDependOnItsBatch) {
  if (HardwareIsa() != Isa::kAmx) GTEST_SKIP() << "no AMX on this CPU";
  const ScopedIsa amx(Isa::kAmx);
  for (const ActivationPrecision precision : {ActivationPrecision::kFp32, ActivationPrecision::kBf16}) {
    const ScopedActivationPrecision scoped(precision);
    TestWeights w(DType::kBF16, 70, 256, 21);
    const int64_t tokens = 40;
    const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * 256), 22);
    std::vector<float> all(static_cast<size_t>(tokens * 70)), few(8 * 70);
    Gemm(x.data(), tokens, w.View(), all.data());
    // 8 tokens: the fewest AMX takes in both modes (fewer go to AVX-512, which streams the
    // weights faster there; gemm.cc).
    for (int64_t t : {0, 13, 32}) {
      Gemm(x.data() + t * 256, 8, w.View(), few.data());
      EXPECT_EQ(0, std::memcmp(few.data(), all.data() + t * 70, 8 * 70 * sizeof(float))) << "tokens " << t << "+";
    }
  }
}

// GemmGroup shares the rows of several GEMMs out in one pass: every problem's result must be
// bit for bit what Gemm gives it alone, whatever the mix of shapes, dtypes and token counts
// (including problems too small to be worth a thread, and int8 ones that take Gemm's own path),
// with fp32 activations and with bf16 ones (grouped in their own pass on AVX-512).
class GemmGroupTest : public ::testing::TestWithParam<ActivationPrecision> {};
INSTANTIATE_TEST_SUITE_P(Precisions, GemmGroupTest,
                         ::testing::Values(ActivationPrecision::kFp32, ActivationPrecision::kBf16));

TEST_P(GemmGroupTest, EachProblemEqualsItsOwnGemmExactly) {
  const ScopedActivationPrecision precision(GetParam());
  struct Case {
    DType dtype;
    int64_t rows, cols, tokens;
  };
  const std::vector<Case> cases = {{DType::kBF16, 2048 / 8, 512, 4}, {DType::kBF16, 17, 33, 1},
                                   {DType::kF16, 129, 200, 3},       {DType::kF32, 64, 100, 7},
                                   {DType::kBF16, 1, 7, 2},          {DType::kBF16, 300, 256, 13}};
  std::vector<TestWeights> weights;
  std::vector<std::vector<float>> xs;
  uint32_t seed = 40;
  for (const Case& c : cases) {
    weights.emplace_back(c.dtype, c.rows, c.cols, seed++);
    xs.push_back(RandomVector(static_cast<size_t>(c.tokens * c.cols), seed++));
  }
  // An int8 problem among them: quantized from a bf16 matrix.
  TestWeights int8_source(DType::kBF16, 40, 96, seed++);
  std::vector<int8_t> q(40 * 96);
  std::vector<float> scales(40);
  QuantizeInt8(int8_source.View(), q.data(), scales.data());
  const WeightView int8_view{q.data(), DType::kI8, 40, 96, scales.data()};
  const std::vector<float> int8_x = RandomVector(5 * 96, seed++);

  ForEachIsa([&](Isa) {
    std::vector<std::vector<float>> expected, actual;
    std::vector<GemmProblem> problems;
    for (size_t i = 0; i < cases.size(); ++i) {
      expected.emplace_back(cases[i].tokens * cases[i].rows);
      actual.emplace_back(expected.back().size(), std::numeric_limits<float>::quiet_NaN());
      Gemm(xs[i].data(), cases[i].tokens, weights[i].View(), expected.back().data());
    }
    expected.emplace_back(5 * 40);
    actual.emplace_back(5 * 40, std::numeric_limits<float>::quiet_NaN());
    Gemm(int8_x.data(), 5, int8_view, expected.back().data());
    for (size_t i = 0; i < cases.size(); ++i) {
      problems.push_back({xs[i].data(), cases[i].tokens, weights[i].View(), actual[i].data()});
    }
    problems.push_back({int8_x.data(), 5, int8_view, actual.back().data()});
    GemmGroup(problems.data(), static_cast<int64_t>(problems.size()));
    for (size_t i = 0; i < actual.size(); ++i) {
      ASSERT_EQ(actual[i].size(), expected[i].size());
      EXPECT_EQ(0, std::memcmp(actual[i].data(), expected[i].data(), actual[i].size() * sizeof(float)))
          << "problem " << i;
    }
  });
}

}  // namespace
}  // namespace mmx::kernels
