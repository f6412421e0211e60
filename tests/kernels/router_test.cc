// RouterTopK: softmax over all experts, top-k in descending probability with ties to the lower
// id, weights renormalised over the chosen k.
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace mmx::kernels {
namespace {

using testing::RandomVector;

TEST(RouterTest, PicksLargestAndRenormalises) {
  // p proportional to [1, 3, 2, 1]: top-2 = {1, 2} with weights 3/5 and 2/5.
  const std::vector<float> logits = {0.f, std::log(3.f), std::log(2.f), 0.f};
  int ids[2];
  float w[2];
  RouterTopK(logits.data(), 1, 4, 2, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 2);
  EXPECT_NEAR(w[0], 0.6f, 1e-6f);
  EXPECT_NEAR(w[1], 0.4f, 1e-6f);
}

TEST(RouterTest, BreaksTiesTowardsLowerExpertId) {
  const std::vector<float> logits = {0.5f, 2.f, 0.5f, 2.f, 2.f, /*token 1*/ 1.f, 1.f, 1.f, 1.f, 1.f};
  int ids[4];
  float w[4];
  RouterTopK(logits.data(), 2, 5, 2, ids, w);
  EXPECT_EQ(ids[0], 1);
  EXPECT_EQ(ids[1], 3);
  EXPECT_EQ(ids[2], 0);
  EXPECT_EQ(ids[3], 1);
  for (float v : w) EXPECT_NEAR(v, 0.5f, 1e-7f);
}

TEST(RouterTest, IsStableForHugeLogits) {
  const std::vector<float> logits = {1000.f, 999.f, -1000.f};
  int ids[2];
  float w[2];
  RouterTopK(logits.data(), 1, 3, 2, ids, w);
  EXPECT_EQ(ids[0], 0);
  EXPECT_EQ(ids[1], 1);
  EXPECT_NEAR(w[0], 1.f / (1.f + std::exp(-1.f)), 1e-6f);
  EXPECT_NEAR(w[1], 1.f / (1.f + std::exp(1.f)), 1e-6f);
}

TEST(RouterTest, MatchesReferenceAndWeightsSumToOne) {
  const int experts = 32, k = 2;
  const int64_t tokens = 33;
  const std::vector<float> logits = RandomVector(static_cast<size_t>(tokens * experts), 8, -4.f, 4.f);
  std::vector<int> ids(tokens * k), ref_ids(tokens * k);
  std::vector<float> w(tokens * k), ref_w(tokens * k);
  reference::RouterTopK(logits.data(), tokens, experts, k, ref_ids.data(), ref_w.data());
  RouterTopK(logits.data(), tokens, experts, k, ids.data(), w.data());
  EXPECT_EQ(ids, ref_ids);
  for (int64_t t = 0; t < tokens; ++t) {
    EXPECT_NEAR(w[t * k] + w[t * k + 1], 1.f, 1e-6f);
    EXPECT_GE(w[t * k], w[t * k + 1]);
    for (int j = 0; j < k; ++j) EXPECT_NEAR(w[t * k + j], ref_w[t * k + j], 1e-6f);
  }
}

}  // namespace
}  // namespace mmx::kernels
