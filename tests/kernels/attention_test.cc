// CausalAttention: the reference against an independently written loop (full score matrix, then
// the mask), the fast path against the reference, with GQA and a KV prefix before the queries;
// and over a paged cache (separate blocks of 64 rows), fp32 and bf16.
#include <cmath>
#include <cstdint>
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

// A cache of `rows` rows of `width` split into separately allocated blocks of `block` rows, in
// `dtype`; `rounded` receives the values as the cache holds them (bf16-rounded for kBF16).
struct PagedCopy {
  std::vector<std::vector<uint16_t>> bf16_blocks;
  std::vector<std::vector<float>> f32_blocks;
  std::vector<const void*> pointers;
};
PagedCopy Page(const std::vector<float>& data, int64_t width, int64_t block, DType dtype, std::vector<float>* rounded) {
  PagedCopy p;
  const int64_t rows = static_cast<int64_t>(data.size()) / width;
  rounded->assign(data.begin(), data.end());
  for (int64_t b0 = 0; b0 < rows; b0 += block) {
    if (dtype == DType::kBF16) {
      p.bf16_blocks.emplace_back(static_cast<size_t>(block * width), uint16_t{0xffff});  // NaN past the rows
      for (int64_t i = b0 * width; i < std::min(rows, b0 + block) * width; ++i) {
        p.bf16_blocks.back()[i - b0 * width] = FloatToBf16(data[i]);
        (*rounded)[i] = Bf16ToFloat(FloatToBf16(data[i]));
      }
      p.pointers.push_back(p.bf16_blocks.back().data());
    } else {
      p.f32_blocks.emplace_back(static_cast<size_t>(block * width), NAN);
      for (int64_t i = b0 * width; i < std::min(rows, b0 + block) * width; ++i) p.f32_blocks.back()[i - b0 * width] = data[i];
      p.pointers.push_back(p.f32_blocks.back().data());
    }
  }
  return p;
}

TEST(CausalAttentionTest, PagedCacheInFp32AndBf16MatchesTheLoopOnTheValuesItHolds) {
  const Case cases[] = {{4, 2, 16, 1, 0}, {8, 2, 128, 1, 200}, {4, 1, 16, 70, 0},
                        {4, 2, 128, 130, 63}, {2, 1, 7, 5, 64}};  // last: the reference path
  uint32_t seed = 100;
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    for (const int64_t block : {int64_t{64}, int64_t{128}}) {
      for (const Case& c : cases) {
        SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " blocks of " << block << ": heads " << c.heads
                                          << "/" << c.kv_heads << " dim " << c.dim << " n " << c.n << " prefix "
                                          << c.prefix);
        AttentionShape s{c.heads, c.kv_heads, c.dim, 1.f / std::sqrt(static_cast<float>(c.dim))};
        const int64_t total = c.n + c.prefix, width = int64_t{c.kv_heads} * c.dim;
        const auto q = RandomVector(static_cast<size_t>(c.n * c.heads * c.dim), seed++, -2.f, 2.f);
        std::vector<float> k, v;
        const PagedCopy pk = Page(RandomVector(static_cast<size_t>(total * width), seed++, -2.f, 2.f), width, block,
                                  dtype, &k);
        const PagedCopy pv = Page(RandomVector(static_cast<size_t>(total * width), seed++), width, block, dtype, &v);
        const std::vector<float> expected = NaiveAttention(s, q, c.n, k, v, total);
        KvCacheView view;
        view.dtype = dtype;
        view.block_tokens = block;
        view.key_blocks = pk.pointers.data();
        view.value_blocks = pv.pointers.data();
        ForEachIsa([&](Isa) {
          std::vector<float> out(expected.size(), NAN);
          CausalAttention(s, q.data(), c.n, view, total, out.data());
          ExpectClose(out, expected, {1e-5f}, "paged");
        });
      }
    }
  }
}

}  // namespace
}  // namespace mmx::kernels
