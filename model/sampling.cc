#include "model/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"

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
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i) {
    if (logits[i] > logits[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

namespace {

uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace

double UniformAt(uint64_t seed, int64_t position) {
  const uint64_t key = Mix64(seed + 0x9e3779b97f4a7c15ull);
  const uint64_t bits = Mix64(key ^ Mix64(static_cast<uint64_t>(position) * 0x9e3779b97f4a7c15ull + 0x632be59bd9b4e019ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;  // 53 random bits
}

int32_t SampleToken(const SamplingParams& params, const float* logits, int64_t vocab, int64_t position) {
  if (params.temperature == 0.f) return Argmax(logits, vocab);

  // Candidates sorted by logit, descending (ties: lower id first), cut to top_k.
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  auto by_logit = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  int64_t keep = vocab;
  if (params.top_k > 0 && params.top_k < vocab) {
    keep = params.top_k;
    std::partial_sort(ids.begin(), ids.begin() + keep, ids.end(), by_logit);
  } else {
    std::sort(ids.begin(), ids.end(), by_logit);
  }
  ids.resize(keep);

  // Softmax at temperature over the kept candidates, in double for a stable cumulative sum.
  std::vector<double> probs(keep);
  const double max_logit = logits[ids[0]];
  double total = 0;
  for (int64_t i = 0; i < keep; ++i) {
    probs[i] = std::exp((logits[ids[i]] - max_logit) / params.temperature);
    total += probs[i];
  }
  // Nucleus: the shortest prefix whose mass reaches top_p (always at least one token).
  if (params.top_p < 1.f) {
    double cumulative = 0;
    int64_t cut = keep;
    for (int64_t i = 0; i < keep; ++i) {
      cumulative += probs[i] / total;
      if (cumulative >= params.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = std::accumulate(probs.begin(), probs.begin() + keep, 0.0);
  }
  const double r = UniformAt(params.seed, position) * total;
  double cumulative = 0;
  for (int64_t i = 0; i < keep; ++i) {
    cumulative += probs[i];
    if (r < cumulative) return ids[i];
  }
  return ids[keep - 1];
}

}  // namespace mmx::model
