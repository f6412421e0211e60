#include "model/moe_exchange.h"

#include <vector>

#include "gtest/gtest.h"

namespace mmx::model {
namespace {

constexpr int64_t kHidden = 2;

// Three tokens, top-2: token t's row is {t, t}; experts chosen in descending probability.
Routing ThreeTokens() {
  Routing r;
  r.k = 2;
  r.expert_ids = {3, 1, 0, 2, 1, 3};
  r.weights = {0.6f, 0.4f, 0.7f, 0.3f, 0.5f, 0.5f};
  return r;
}
const std::vector<float> kRows = {0, 0, 1, 1, 2, 2};

// The holder of each pair, from the holder of each expert.
template <class F>
std::vector<uint32_t> Holders(const Routing& r, F holder_of) {
  std::vector<uint32_t> h;
  for (int e : r.expert_ids) h.push_back(static_cast<uint32_t>(holder_of(e)));
  return h;
}

TEST(MoeExchangeTest, GroupsPairsByHolderWithTheirRowsIdsAndWeights) {
  // Experts 0 and 1 on holder 5, 2 and 3 on holder 9.
  MoeExchange x;
  x.Dispatch(ThreeTokens(), kRows.data(), 3, kHidden, Holders(ThreeTokens(), [](int e) { return e < 2 ? 5 : 9; }));
  ASSERT_EQ(x.parts().size(), 2u);
  const MoeExchange::Part& a = x.parts()[0];
  EXPECT_EQ(a.holder, 5u);
  EXPECT_EQ(a.pairs, (std::vector<int64_t>{1, 2, 4}));
  EXPECT_EQ(a.expert_ids, (std::vector<int>{1, 0, 1}));
  EXPECT_EQ(a.weights, (std::vector<float>{0.4f, 0.7f, 0.5f}));
  EXPECT_EQ(a.rows, (std::vector<float>{0, 0, 1, 1, 2, 2}));
  const MoeExchange::Part& b = x.parts()[1];
  EXPECT_EQ(b.holder, 9u);
  EXPECT_EQ(b.pairs, (std::vector<int64_t>{0, 3, 5}));
  EXPECT_EQ(b.rows, (std::vector<float>{0, 0, 1, 1, 2, 2}));
}

TEST(MoeExchangeTest, CombineSumsEachTokensResultsWhereverTheyRan) {
  MoeExchange x;
  x.Dispatch(ThreeTokens(), kRows.data(), 3, kHidden, Holders(ThreeTokens(), [](int e) { return e % 2; }));
  // Each holder returns 10 * expert id + token for its rows (the test's stand-in for an expert).
  for (size_t i = 0; i < x.parts().size(); ++i) {
    const MoeExchange::Part& part = x.parts()[i];
    std::vector<float> results;
    for (size_t r = 0; r < part.pairs.size(); ++r) {
      const float v = 10.f * part.expert_ids[r] + part.rows[r * kHidden];
      results.insert(results.end(), {v, v});
    }
    x.Receive(i, results.data());
  }
  std::vector<float> m(3 * kHidden);
  x.Combine(m.data());
  // Token 0: experts 3 and 1 -> 30 + 10; token 1: 0 and 2 -> 1 + 21; token 2: 1 and 3 -> 12 + 32.
  EXPECT_EQ(m, (std::vector<float>{40, 40, 22, 22, 44, 44}));
  // The next layer reuses the object: nothing of this one's dispatch is left.
  Routing one;
  one.k = 1;
  one.expert_ids = {2};
  one.weights = {1.f};
  x.Dispatch(one, kRows.data(), 1, kHidden, {7});
  ASSERT_EQ(x.parts().size(), 1u);
  EXPECT_EQ(x.parts()[0].holder, 7u);
  EXPECT_EQ(x.parts()[0].rows, (std::vector<float>{0, 0}));
}

}  // namespace
}  // namespace mmx::model
