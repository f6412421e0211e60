// Single-process generation over a ModelRunner: prompts are prefilled in chunks (every
// prefilling sequence contributes a chunk to the same step), then all live sequences decode
// together, one token each per step, until each reaches an eos id or its token budget.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/model_runner.h"
#include "model/sampling.h"

namespace mmx::model {

struct GenerateOptions {
  int max_tokens = 16;                // new tokens per prompt, >= 1
  SamplingParams sampling;            // seed s gives sequence i the seed s + i
  std::vector<int64_t> eos_ids;       // stop ids; see DefaultEosIds
  int prefill_chunk = 256;            // tokens per sequence per prefill step
  bool keep_logits = false;           // keep every logits row (for --logits-out)
};

struct GenerateResult {
  std::vector<int32_t> prompt_ids;
  std::vector<int32_t> output_ids;
  std::string finish_reason;          // "length" or "stop"
  // With keep_logits: [P + n - 1, V], row i < P from the prefill at prompt position i, row P + j
  // from decode step j (the one that chose output token j + 1).
  std::vector<float> logits;
};

struct GenerateStats {
  int64_t prompt_tokens = 0;
  int64_t output_tokens = 0;
  double prefill_seconds = 0;         // steps that carried prompt tokens
  double decode_seconds = 0;          // steps that carried only decode tokens
  double total_seconds = 0;
  // output tokens per second of wall time, prefill included
  double tokens_per_second() const { return total_seconds > 0 ? output_tokens / total_seconds : 0; }
};

// InvalidArgument for an empty prompt, an id outside [0, V), max_tokens < 1, a prefill chunk
// < 1 or bad sampling parameters; the message says which prompt and what to fix.
absl::Status ValidateGenerateRequest(const ModelConfig& config,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     const GenerateOptions& options);

absl::StatusOr<std::vector<GenerateResult>> Generate(
    ModelRunner& runner, const std::vector<std::vector<int32_t>>& prompts,
    const GenerateOptions& options, GenerateStats* stats = nullptr);

}  // namespace mmx::model
