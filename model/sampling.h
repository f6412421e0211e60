// Token sampling from a logits row: greedy, or temperature with optional top-k and top-p,
// reproducible from a seed. One Sampler per sequence (it owns that sequence's RNG).
#pragma once

#include <cstdint>
#include <random>

#include "absl/status/status.h"

namespace mmx::model {

struct SamplingParams {
  float temperature = 0.f;  // 0 = greedy (argmax, ties to the lower id)
  float top_p = 1.f;        // nucleus mass in (0, 1]; 1 = off
  int top_k = 0;            // keep the k most likely; 0 = off
  uint64_t seed = 0;
};

// InvalidArgument naming the field for a negative or non-finite temperature, top_p outside
// (0, 1], or a negative top_k.
absl::Status ValidateSamplingParams(const SamplingParams& params);

class Sampler {
 public:
  explicit Sampler(const SamplingParams& params);
  // Picks a token id from logits [vocab].
  int32_t Sample(const float* logits, int64_t vocab);

 private:
  SamplingParams params_;
  std::mt19937_64 rng_;
};

// argmax with ties to the lower index.
int32_t Argmax(const float* logits, int64_t n);

}  // namespace mmx::model
