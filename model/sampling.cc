#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/splitmix64.h"
#include "model/token_selection.h"

namespace mmx::model {

absl::Status ValidateSamplingParams(const SamplingParams& p) {
  if (!std::isfinite(p.temperature) || p.temperature < 0.f) {
    return absl::InvalidArgumentError(absl::StrCat(
        "temperature must be >= 0 (0 = greedy), got ", p.temperature));
  }
  if (!(p.top_p > 0.f && p.top_p <= 1.f)) {
    return absl::InvalidArgumentError(absl::StrCat("top_p must be in (0, 1], got ", p.top_p));
  }
  if (p.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat("top_k must be >= 0 (0 = off), got ", p.top_k));
  }
  return absl::OkStatus();
}

int32_t Argmax(const float* logits, int64_t n) {
  const int64_t first = FirstIndexOf(logits, n, MaxLogit(logits, n));
  return first < n ? static_cast<int32_t>(first) : 0;  // all NaN: 0
}

double UniformAt(uint64_t seed, int64_t position) {
  const uint64_t key = SplitMix64Mix(seed + kSplitMix64Gamma);
  const uint64_t bits =
      SplitMix64Mix(key ^ SplitMix64Mix(static_cast<uint64_t>(position) * kSplitMix64Gamma + 0x632be59bd9b4e019ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;  // 53 random bits
}

namespace {

// top_k: the k best ids, sorted, then the nucleus over them as a prefix of that order.
int32_t SampleFromTopK(const SamplingParams& params, const float* logits, int64_t vocab, double u) {
  const std::vector<int32_t> ids = TopKIds(logits, vocab, params.top_k);
  const int64_t k = static_cast<int64_t>(ids.size());
  // Softmax at temperature over the kept candidates, in double for a stable cumulative sum.
  std::vector<double> probs(k);
  const double max_logit = logits[ids[0]];
  double total = 0;
  for (int64_t i = 0; i < k; ++i) {
    probs[i] = std::exp((logits[ids[i]] - max_logit) / params.temperature);
    total += probs[i];
  }
  if (!(total > 0) || !std::isfinite(total)) return ids[0];
  int64_t keep = k;
  if (params.top_p < 1.f) {  // the shortest prefix whose mass reaches top_p (at least one token)
    double cumulative = 0;
    for (int64_t i = 0; i < k; ++i) {
      cumulative += probs[i];
      if (cumulative >= params.top_p * total) {
        keep = i + 1;
        break;
      }
    }
    total = std::accumulate(probs.begin(), probs.begin() + keep, 0.0);
  }
  const double r = u * total;
  double cumulative = 0;
  for (int64_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (r < cumulative) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace

int32_t SampleToken(const SamplingParams& params, const float* logits, int64_t vocab, int64_t position) {
  if (params.temperature == 0.f) return Argmax(logits, vocab);
  const double u = UniformAt(params.seed, position);
  if (params.top_k > 0 && params.top_k < vocab) return SampleFromTopK(params, logits, vocab, u);

  // The whole vocabulary: weights in a few vectorised passes, no sort. The draw inverts the
  // cumulative distribution in id order; the nucleus is found from a histogram of the weights.
  const float max_logit = MaxLogit(logits, vocab);
  if (!std::isfinite(max_logit)) return Argmax(logits, vocab);  // all masked, or +inf present
  thread_local ExpWeights weights;
  weights.Compute(logits, vocab, max_logit, params.temperature);
  // NaN logits, or a temperature so small that (l - max) / t is 0 * inf: the limit is greedy.
  if (!(weights.total > 0) || !std::isfinite(weights.total)) return Argmax(logits, vocab);
  if (params.top_p >= 1.f) return DrawInIdOrder(weights, u * weights.total);
  thread_local Nucleus nucleus;
  FindNucleus(logits, weights, params.top_p, &nucleus);
  return DrawInNucleus(weights, nucleus, u * nucleus.mass);
}

}  // namespace mmx::model
