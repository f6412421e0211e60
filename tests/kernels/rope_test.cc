// ApplyRope: a hand-worked rotation (rotate-half pairs, pass-through dims), then the fast path
// against the reference at large positions.
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace mmx::kernels {
namespace {

using testing::ExpectClose;
using testing::ForEachIsa;
using testing::RandomVector;

TEST(RopeTest, RotatesPairsHalfARotaryDimApartAndLeavesTheRestAlone) {
  // head_dim 6, rotary_dim 4: pairs (0,2) and (1,3) rotate; dims 4 and 5 pass through.
  const std::vector<float> x0 = {1, 2, 3, 4, 5, 6, /*head 1*/ -1, 0.5f, 2, -2, 7, 8};
  const int64_t pos = 3;
  const std::vector<float> inv_freq = {1.f, 0.5f};
  const float c0 = std::cos(3.f), s0 = std::sin(3.f), c1 = std::cos(1.5f), s1 = std::sin(1.5f);
  std::vector<float> expected = {1 * c0 - 3 * s0, 2 * c1 - 4 * s1, 3 * c0 + 1 * s0, 4 * c1 + 2 * s1, 5, 6,
                                 -1 * c0 - 2 * s0, 0.5f * c1 + 2 * s1, 2 * c0 - 1 * s0, -2 * c1 + 0.5f * s1, 7, 8};
  auto check = [&](auto fn) {
    std::vector<float> x = x0;
    fn(x.data());
    ExpectClose(x, expected, {1e-6f}, "rope");
  };
  check([&](float* x) { reference::ApplyRope(x, 1, 2, 6, 4, &pos, inv_freq.data()); });
  ForEachIsa([&](Isa) { check([&](float* x) { ApplyRope(x, 1, 2, 6, 4, &pos, inv_freq.data()); }); });
}

TEST(RopeTest, PositionZeroIsIdentity) {
  const std::vector<float> x0 = RandomVector(2 * 128, 3);
  std::vector<float> inv_freq(32);
  for (int i = 0; i < 32; ++i) inv_freq[i] = std::pow(1e7f, -static_cast<float>(i) / 32.f);
  const int64_t pos = 0;
  ForEachIsa([&](Isa) {
    std::vector<float> x = x0;
    ApplyRope(x.data(), 1, 2, 128, 64, &pos, inv_freq.data());
    EXPECT_EQ(x, x0);
  });
}

TEST(RopeTest, MatchesReferenceAtLargePositions) {
  const int heads = 5, head_dim = 128, rotary = 64;
  const int64_t tokens = 7;
  std::vector<float> inv_freq(rotary / 2);
  for (int i = 0; i < rotary / 2; ++i) inv_freq[i] = 1.f / std::pow(1e7f, 2.f * i / rotary);
  const std::vector<int64_t> pos = {0, 1, 2, 1000, 65535, 1000003, 10239999};
  const std::vector<float> x0 = RandomVector(static_cast<size_t>(tokens * heads * head_dim), 4);
  std::vector<float> expected = x0;
  reference::ApplyRope(expected.data(), tokens, heads, head_dim, rotary, pos.data(), inv_freq.data());
  ForEachIsa([&](Isa) {
    std::vector<float> x = x0;
    ApplyRope(x.data(), tokens, heads, head_dim, rotary, pos.data(), inv_freq.data());
    ExpectClose(x, expected, {2e-6f}, "rope");
  });
}

}  // namespace
}  // namespace mmx::kernels
