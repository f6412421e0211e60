// The sampler's draws against the exact distribution: the softmax at temperature over the whole
// vocabulary, cut to top_k and to the nucleus, computed here the slow, obvious way (sort
// everything, in double). The sampler avoids the sort; these tests hold it to the same answer.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "gtest/gtest.h"
#include "model/sampling.h"
#include "model/token_selection.h"

namespace mmx::model {
namespace {

// Exact probabilities by id: sort by (logit descending, id ascending), cut, normalise.
std::vector<double> ExactDistribution(const std::vector<float>& logits, const SamplingParams& p) {
  const int64_t n = static_cast<int64_t>(logits.size());
  std::vector<int32_t> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  int64_t keep = (p.top_k > 0 && p.top_k < n) ? p.top_k : n;
  std::vector<double> w(keep);
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) total += w[i] = std::exp((double{logits[ids[i]]} - logits[ids[0]]) / p.temperature);
  if (p.top_p < 1.f) {
    double cumulative = 0;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += w[i];
      if (cumulative >= p.top_p * total) {
        keep = i + 1;
        break;
      }
    }
  }
  const double kept = std::accumulate(w.begin(), w.begin() + keep, 0.0);
  std::vector<double> probs(n, 0.0);
  for (int64_t i = 0; i < keep; ++i) probs[ids[i]] = w[i] / kept;
  return probs;
}

struct Fit {
  double chi2 = 0;
  int bins = 0;
  int outside_support = 0;  // draws of ids whose exact probability is 0
};

// Pearson's chi-square of the counts against the exact probabilities, ids taken in order of
// probability and grouped so that every bin expects at least 20 draws.
Fit ChiSquare(const std::vector<int>& counts, const std::vector<double>& probs, int draws) {
  std::vector<int32_t> ids(probs.size());
  std::iota(ids.begin(), ids.end(), 0);
  std::sort(ids.begin(), ids.end(), [&](int32_t a, int32_t b) { return probs[a] > probs[b]; });
  Fit fit;
  double expected = 0, observed = 0;
  for (int32_t id : ids) {
    if (probs[id] == 0) {
      fit.outside_support += counts[id];
      continue;
    }
    expected += probs[id] * draws;
    observed += counts[id];
    if (expected >= 20) {
      fit.chi2 += (observed - expected) * (observed - expected) / expected;
      ++fit.bins;
      expected = observed = 0;
    }
  }
  if (expected > 0) {  // the remainder: its own bin
    fit.chi2 += (observed - expected) * (observed - expected) / expected;
    ++fit.bins;
  }
  return fit;
}

Fit Sample(const std::vector<float>& logits, const SamplingParams& p, int draws) {
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i) ++counts[SampleToken(p, logits.data(), static_cast<int64_t>(logits.size()), i)];
  return ChiSquare(counts, ExactDistribution(logits, p), draws);
}

// An LM-like row: most ids far below a few dozen plausible ones. An odd size, so the vectorised
// passes have a remainder.
std::vector<float> LanguageModelLogits(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> noise(0.f, 1.f);
  std::vector<float> logits(n);
  for (float& l : logits) l = noise(rng);
  for (int i = 0; i < 40; ++i) logits[rng() % n] += 1.f + 0.05f * i;
  return logits;
}

// Chi-square's mean is its degrees of freedom and its sd sqrt(2 df): 5 sd is a bound a right
// sampler does not reach (and the draws are a fixed function of the seeds: no flake).
void ExpectFits(const Fit& fit) {
  const double df = fit.bins - 1;
  EXPECT_EQ(fit.outside_support, 0);
  EXPECT_GT(fit.bins, 10);
  EXPECT_LT(fit.chi2, df + 5 * std::sqrt(2 * df)) << fit.bins << " bins";
  std::printf("chi-square %.1f over %d bins\n", fit.chi2, fit.bins);
}

TEST(SamplingDistributionTest, TemperatureOverTheWholeVocabulary) {
  ExpectFits(Sample(LanguageModelLogits(4099, 1), SamplingParams{0.7f, 1.f, 0, 11}, 60000));
}

TEST(SamplingDistributionTest, Nucleus) {
  ExpectFits(Sample(LanguageModelLogits(4099, 2), SamplingParams{0.7f, 0.9f, 0, 12}, 60000));
  ExpectFits(Sample(LanguageModelLogits(4099, 3), SamplingParams{1.3f, 0.5f, 0, 13}, 60000));
}

TEST(SamplingDistributionTest, TopKAndNucleusTogether) {
  ExpectFits(Sample(LanguageModelLogits(4099, 4), SamplingParams{0.9f, 0.8f, 40, 14}, 60000));
}

// The test's power: draws at temperature 0.7 judged against the softmax at 0.77 fail the bound.
TEST(SamplingDistributionTest, TheBoundCatchesASlightlyWrongDistribution) {
  const std::vector<float> logits = LanguageModelLogits(4099, 1);
  std::vector<int> counts(logits.size());
  for (int i = 0; i < 60000; ++i) ++counts[SampleToken({0.7f, 1.f, 0, 11}, logits.data(), 4099, i)];
  const Fit fit = ChiSquare(counts, ExactDistribution(logits, {0.77f, 1.f, 0, 0}), 60000);
  const double df = fit.bins - 1;
  EXPECT_GT(fit.chi2, df + 5 * std::sqrt(2 * df));
}

// A flat row: the nucleus boundary falls inside a run of equal logits, where the lower ids go
// first; the sampler must cut the run exactly where the sort does.
TEST(SamplingDistributionTest, NucleusCutsARunOfTiesByIdLikeTheSort) {
  std::vector<float> logits(3000, 0.f);
  for (int i = 0; i < 10; ++i) logits[2 * i] = 1.f;
  const SamplingParams p{1.f, 0.3f, 0, 15};
  const Fit fit = Sample(logits, p, 30000);
  ExpectFits(fit);
  const std::vector<double> exact = ExactDistribution(logits, p);
  // Mass 10e + 2990 = 3017.2; 0.3 of it is 905.2: the 10 ones at logit 1 and 878 of the run.
  EXPECT_EQ(std::count_if(exact.begin(), exact.end(), [](double q) { return q > 0; }), 10 + 878);
}

// The nucleus the histogram finds is the sort's, id for id, on rows of every shape.
TEST(SamplingDistributionTest, NucleusIsTheSortsPrefix) {
  for (uint32_t seed = 0; seed < 20; ++seed) {
    const std::vector<float> logits = LanguageModelLogits(1000 + 37 * seed, seed);
    for (float top_p : {0.05f, 0.5f, 0.9f, 0.99f}) {
      const SamplingParams p{0.8f, top_p, 0, 0};
      ExpWeights weights;
      weights.Compute(logits.data(), static_cast<int64_t>(logits.size()), MaxLogit(logits.data(), logits.size()), p.temperature);
      Nucleus nucleus;
      FindNucleus(logits.data(), weights, top_p, &nucleus);
      std::set<int32_t> found(nucleus.boundary_ids.begin(), nucleus.boundary_ids.end());
      for (size_t i = 0; i < logits.size(); ++i) {
        if (nucleus.keys[i] > nucleus.bucket) found.insert(static_cast<int32_t>(i));
      }
      const std::vector<double> exact = ExactDistribution(logits, p);
      std::set<int32_t> expected;
      for (size_t i = 0; i < exact.size(); ++i) {
        if (exact[i] > 0) expected.insert(static_cast<int32_t>(i));
      }
      EXPECT_EQ(found, expected) << "seed " << seed << " top_p " << top_p;
    }
  }
}

TEST(SamplingDistributionTest, TopKIdsAreTheKBestInOrder) {
  const std::vector<float> logits = {3.f, 1.f, 3.f, 7.f, -2.f, 7.f, 0.f};
  EXPECT_EQ(TopKIds(logits.data(), 7, 4), (std::vector<int32_t>{3, 5, 0, 2}));
  EXPECT_EQ(TopKIds(logits.data(), 7, 1), (std::vector<int32_t>{3}));
}

TEST(SamplingDistributionTest, MaskedIdsAreNeverDrawnAndDegenerateRowsFallBackToGreedy) {
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> logits(100, -inf);
  logits[17] = 0.5f;
  logits[60] = 0.4f;
  std::map<int, int> counts;
  for (int i = 0; i < 2000; ++i) ++counts[SampleToken({1.f, 1.f, 0, 3}, logits.data(), 100, i)];
  EXPECT_EQ(counts.size(), 2u);
  EXPECT_EQ(SampleToken({1.f, 0.9f, 0, 3}, std::vector<float>(9, -inf).data(), 9, 0), 0);
  std::vector<float> with_nan = {0.f, std::nanf(""), 1.f};
  const int32_t id = SampleToken({1.f, 0.9f, 0, 3}, with_nan.data(), 3, 0);
  EXPECT_GE(id, 0);
  EXPECT_LT(id, 3);
  // A temperature so small that (l - max) / t overflows: the limit, greedy.
  EXPECT_EQ(SampleToken({1e-40f, 1.f, 0, 3}, LanguageModelLogits(50, 5).data(), 50, 0),
            Argmax(LanguageModelLogits(50, 5).data(), 50));
}

}  // namespace
}  // namespace mmx::model
