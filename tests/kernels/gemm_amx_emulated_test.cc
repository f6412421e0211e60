// The AMX kernel (kernels/cpu/gemm_amx.cc) over a software model of the tiles: packing, tile
// layout, row and token blocking and tails give the reference product; fp32 activations (three
// bf16 parts) give the fp32 products' sums, bf16 ones (one part) the rounded activations'; and a
// token's outputs are bit for bit the same alone and in any batch. On a CPU with AMX,
// gemm_test.cc runs the real instructions through Gemm at Isa::kAmx as well.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "base/bf16.h"
#include "gtest/gtest.h"
#include "kernels/cpu/gemm_amx.h"
#include "kernels/cpu/reference.h"
#include "tests/kernels/kernel_test_util.h"

namespace mmx::kernels {
namespace internal::emulated {
// Defined by gemm_amx_emulated.cc (gemm_amx.h declares it only in an emulating build).
void GemmRowsAmx(const AmxPackedActivations& x, const uint16_t* w, int64_t rows, float* y, int64_t row_begin,
                 int64_t row_end, uint16_t* pad);
}  // namespace internal::emulated
namespace {

using testing::RandomVector;
using testing::TestWeights;

// y = x · wᵀ through the emulated kernel, its rows in blocks of 16 (as the launcher shares them).
std::vector<float> EmulatedGemm(const std::vector<float>& x, int64_t tokens, const TestWeights& w, int parts) {
  std::vector<uint16_t> packed;
  const internal::AmxPackedActivations a = internal::PackAmxActivations(x.data(), tokens, w.cols, parts, packed);
  std::vector<float> y(static_cast<size_t>(tokens * w.rows), std::numeric_limits<float>::quiet_NaN());
  std::vector<uint16_t> pad(static_cast<size_t>(internal::kAmxRows * w.cols));
  const auto* data = static_cast<const uint16_t*>(w.View().data);
  for (int64_t r = 0; r < w.rows; r += 2 * internal::kAmxRows) {  // two blocks per call, as a thread's range
    internal::emulated::GemmRowsAmx(a, data, w.rows, y.data(), r, std::min(w.rows, r + 2 * internal::kAmxRows),
                                    pad.data());
  }
  return y;
}

// Within 1e-6 of sum_i |x_i w_oi| of the reference (fp32 sums in another order); with one part,
// against the reference on activations rounded to bf16.
void Check(int64_t rows, int64_t cols, int64_t tokens, int parts, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << "rows " << rows << " cols " << cols << " tokens " << tokens << " parts "
                                    << parts);
  TestWeights w(DType::kBF16, rows, cols, seed);
  std::vector<float> x = RandomVector(static_cast<size_t>(tokens * cols), seed + 1);
  std::vector<float> exact_x = x;
  if (parts == 1) {
    for (float& v : exact_x) v = Bf16ToFloat(FloatToBf16(v));
  }
  std::vector<float> expected(static_cast<size_t>(tokens * rows));
  reference::Gemm(exact_x.data(), tokens, w.View(), expected.data());
  const std::vector<float> y = EmulatedGemm(x, tokens, w, parts);
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t o = 0; o < rows; ++o) {
      double scale = 0;
      for (int64_t i = 0; i < cols; ++i) scale += std::fabs(exact_x[t * cols + i] * reference::WeightAt(w.View(), o, i));
      ASSERT_NEAR(y[t * rows + o], expected[t * rows + o], 1e-6 * scale + 1e-30) << "token " << t << " row " << o;
    }
  }
}

TEST(GemmAmxEmulatedTest, MatchesTheReferenceOverTailsOfRowsAndTokens) {
  uint32_t seed = 1;
  for (int parts : {3, 1}) {
    for (int64_t rows : {1, 15, 16, 17, 40}) {
      for (int64_t cols : {32, 96}) {
        for (int64_t tokens : {1, 2, 15, 16, 17, 33, 64, 65, 70}) Check(rows, cols, tokens, parts, seed++);
      }
    }
  }
}

TEST(GemmAmxEmulatedTest, ThreePartsCarryEveryBitOfAnFp32Activation) {
  // x = 1 + 2^-12 + 2^-20 needs 21 significant bits; w = 1. One part would give 1.
  const float xv = 1.f + std::ldexp(1.f, -12) + std::ldexp(1.f, -20);
  std::vector<float> x(32, 0.f);
  x[0] = xv;
  TestWeights w(DType::kBF16, 1, 32, 3);
  std::vector<uint16_t>& bits = w.half;
  std::fill(bits.begin(), bits.end(), FloatToBf16(0.f));
  bits[0] = FloatToBf16(1.f);
  EXPECT_EQ(EmulatedGemm(x, 1, w, 3)[0], xv);
  EXPECT_EQ(EmulatedGemm(x, 1, w, 1)[0], 1.f);
}

TEST(GemmAmxEmulatedTest, ATokensOutputsDoNotDependOnItsBatch) {
  TestWeights w(DType::kBF16, 37, 64, 11);
  const int64_t tokens = 50;
  const std::vector<float> x = RandomVector(static_cast<size_t>(tokens * 64), 12);
  const std::vector<float> all = EmulatedGemm(x, tokens, w, 3);
  for (int64_t t : {0, 17, 49}) {
    const std::vector<float> one(x.begin() + t * 64, x.begin() + (t + 1) * 64);
    const std::vector<float> alone = EmulatedGemm(one, 1, w, 3);
    EXPECT_EQ(0, std::memcmp(alone.data(), all.data() + t * 37, 37 * sizeof(float))) << "token " << t;
  }
}

}  // namespace
}  // namespace mmx::kernels
