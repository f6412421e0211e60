// RequestFactory: checks a GenerateRequest (from a Generate call or a job) against the model,
// the tokenizer and the server's limits, and turns it into a scheduler Request. Every refusal
// is INVALID_ARGUMENT (or FAILED_PRECONDITION when the checkpoint lacks the tokenizer a text
// request needs) with a message that says what to fix.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/request.h"
#include "mmx/v1/inference.pb.h"
#include "model/config.h"
#include "model/tokenizer/tokenizer.h"

namespace mmx::coordinator {

struct ServingLimits {
  int max_prompt_tokens = 32768;  // --max-prompt-tokens
  int max_tokens = 4096;          // --max-tokens: ceiling on sampling.max_tokens
};

inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxStopStringBytes = 256;
inline constexpr int kMaxStopTokenIds = 64;

class RequestFactory {
 public:
  // `tokenizer` may be null (a checkpoint without tokenizer.json: token ids only).
  RequestFactory(model::ModelConfig config, const tokenizer::Tokenizer* tokenizer, ServingLimits limits)
      : config_(std::move(config)), tokenizer_(tokenizer), limits_(limits) {}

  absl::StatusOr<Request::Params> Validate(const v1::GenerateRequest& request) const;
  // Validate, then a Request with a fresh id (and a TextStream when there is a tokenizer).
  absl::StatusOr<std::shared_ptr<Request>> Make(const v1::GenerateRequest& request, const std::string& source = "");

  const tokenizer::Tokenizer* tokenizer() const { return tokenizer_; }
  const ServingLimits& limits() const { return limits_; }
  // The ids generation stops on by default: config.json's eos ids, else the tokenizer's
  // <end_of_sentence> (MODEL.md §8), else 200020 when the vocabulary has it.
  std::vector<int64_t> DefaultStopIds() const;

 private:
  const model::ModelConfig config_;
  const tokenizer::Tokenizer* const tokenizer_;
  const ServingLimits limits_;
  std::atomic<uint64_t> next_id_{1};
};

}  // namespace mmx::coordinator
