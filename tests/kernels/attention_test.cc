// CausalAttention: the reference against an independently written loop (full score matrix, then
// the mask), the fast path against the reference, with GQA and a KV prefix before the queries.
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

// Builds the whole [n, total_len] score matrix for one head, masks the future with -inf, and
// normalises by the sum of exp(score - max).
std::vector<float> NaiveAttention(const AttentionShape& s, const std::vector<float>& q, int64_t n,
                                  const std::vector<float>& k, const std::vector<float>& v, int64_t total) {
  const int D = s.head_dim;
  std::vector<float> out(static_cast<size_t>(n * s.num_heads * D));
  for (int h = 0; h < s.num_heads; ++h) {
    const int kvh = h * s.num_kv_heads / s.num_heads;
    for (int64_t i = 0; i < n; ++i) {
      std::vector<double> score(static_cast<size_t>(total));
      double max_score = -INFINITY;
      for (int64_t j = 0; j < total; ++j) {
        double dot = 0;
        for (int d = 0; d < D; ++d) dot += q[(i * s.num_heads + h) * D + d] * k[(j * s.num_kv_heads + kvh) * D + d];
        score[j] = (j <= total - n + i) ? dot * s.scale : -INFINITY;
        max_score = std::max(max_score, score[j]);
      }
      double denom = 0;
      for (double& sc : score) denom += (sc = std::exp(sc - max_score));
      for (int d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < total; ++j) acc += score[j] * v[(j * s.num_kv_heads + kvh) * D + d];
        out[(i * s.num_heads + h) * D + d] = static_cast<float>(acc / denom);
      }
    }
  }
  return out;
}

struct Case {
  int heads, kv_heads, dim;
  int64_t n, prefix;
};

TEST(CausalAttentionTest, MatchesNaiveLoopWithGqaAndPrefix) {
  const Case cases[] = {{4, 2, 16, 1, 0},  {4, 2, 16, 3, 5},   {4, 1, 16, 17, 0},  {8, 2, 128, 1, 100},
                        {8, 8, 32, 40, 7}, {4, 4, 128, 33, 0}, {2, 1, 7, 5, 3},    {4, 2, 128, 130, 20}};
  uint32_t seed = 1;
  for (const Case& c : cases) {
    SCOPED_TRACE(::testing::Message() << "heads " << c.heads << "/" << c.kv_heads << " dim " << c.dim << " n "
                                      << c.n << " prefix " << c.prefix);
    AttentionShape s{c.heads, c.kv_heads, c.dim, 1.f / std::sqrt(static_cast<float>(c.dim))};
    const int64_t total = c.n + c.prefix;
    // Scores of several units make the softmax far from uniform.
    const auto q = RandomVector(static_cast<size_t>(c.n * c.heads * c.dim), seed++, -2.f, 2.f);
    const auto k = RandomVector(static_cast<size_t>(total * c.kv_heads * c.dim), seed++, -2.f, 2.f);
    const auto v = RandomVector(static_cast<size_t>(total * c.kv_heads * c.dim), seed++);
    const std::vector<float> expected = NaiveAttention(s, q, c.n, k, v, total);
    std::vector<float> out(expected.size());
    reference::CausalAttention(s, q.data(), c.n, k.data(), v.data(), total, out.data());
    ExpectClose(out, expected, {2e-6f}, "reference");
    ForEachIsa([&](Isa) {
      std::vector<float> fast(expected.size(), NAN);
      CausalAttention(s, q.data(), c.n, k.data(), v.data(), total, fast.data());
      ExpectClose(fast, expected, {1e-5f}, "fast");
    });
  }
}

TEST(CausalAttentionTest, FirstQueryOfAFreshSequenceReturnsItsOwnValue) {
  AttentionShape s{2, 1, 4, 0.5f};
  const auto q = RandomVector(2 * 2 * 4, 1), k = RandomVector(2 * 4, 2), v = RandomVector(2 * 4, 3);
  ForEachIsa([&](Isa) {
    std::vector<float> out(2 * 2 * 4);
    CausalAttention(s, q.data(), 2, k.data(), v.data(), 2, out.data());
    for (int h = 0; h < 2; ++h)
      for (int d = 0; d < 4; ++d) EXPECT_NEAR(out[h * 4 + d], v[d], 1e-6f);
  });
}

TEST(CausalAttentionTest, IsStableForHugeScores) {
  // Scores around 1e4 overflow exp unless the maximum is subtracted first.
  AttentionShape s{1, 1, 2, 1.f};
  const std::vector<float> q = {100.f, 100.f}, k = {50.f, 50.f, 50.f, 49.f}, v = {1.f, 2.f, 3.f, 4.f};
  ForEachIsa([&](Isa) {
    std::vector<float> out(2);
    CausalAttention(s, q.data(), 1, k.data(), v.data(), 2, out.data());
    const float w1 = 1.f / (1.f + std::exp(100.f));  // weight of key 1, score 100 lower
    EXPECT_NEAR(out[0], 1.f + 2.f * w1, 1e-6f);
    EXPECT_NEAR(out[1], 2.f + 2.f * w1, 1e-6f);
  });
}

}  // namespace
}  // namespace mmx::kernels
