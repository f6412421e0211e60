// Token sampling from a logits row: greedy, or temperature with optional top-k and top-p,
// reproducible from a seed. The random draw for a sequence's token at position p depends only
// on (seed, p): a counter-based generator, not a stream with a history. So a sequence whose
// state was rebuilt elsewhere (failover: a new tail, its prompt and tokens replayed) draws
// exactly what it would have drawn, and no sampler state lives between steps.
#pragma once

#include <cstdint>

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

// Picks the id of the token at sequence position `position` (0-based: the prompt's first token
// is position 0) from that position's logits [vocab].
int32_t SampleToken(const SamplingParams& params, const float* logits, int64_t vocab, int64_t position);

// The uniform draw in [0, 1) for (seed, position): SplitMix64's finaliser over the seed and
// the position, each mixed on its own so that nearby seeds and positions share no draws.
double UniformAt(uint64_t seed, int64_t position);

// argmax with ties to the lower index.
int32_t Argmax(const float* logits, int64_t n);

}  // namespace mmx::model
