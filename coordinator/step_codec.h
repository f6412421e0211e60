// The data-plane messages of a step as the coordinator sends and receives them (wire.proto,
// docs/protocol.md): each micro-batch goes to the head as a StepHeader with its token ids, and
// comes back from the tail (or from the worker where it failed) as a TokensHeader.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "mmx/v1/wire.pb.h"
#include "model/sampling.h"
#include "transport/transport.h"
#include "transport/wire_check.h"

namespace mmx::coordinator {

// One sequence's part of a step.
struct SequenceStep {
  uint64_t sequence_id = 0;
  int64_t start_position = 0;   // tokens the sequence has processed before this step
  std::vector<int32_t> tokens;  // a prompt chunk, or the last sampled token
  bool sample = true;           // the tail samples after the last token
  bool return_logits = false;   // the tail returns every token's logits
  model::SamplingParams sampling;
  int logprobs = 0;             // top alternatives returned with each sampled token
  // The prompt's own log-probabilities: row i is scored against next_token_ids[i], with
  // `prompt_logprobs` alternatives (wire.proto StepSequence).
  std::vector<int32_t> next_token_ids;
  int prompt_logprobs = 0;
};

struct OutgoingMicroBatch {
  v1::StepHeader header;
  std::vector<int32_t> tokens;  // the payload: every sequence's tokens, in header order
};

// Micro-batch `index` of `count` of step `step_id`. `freed`: sequences whose state the workers
// drop before running it.
OutgoingMicroBatch EncodeMicroBatch(uint64_t step_id, uint32_t index, uint32_t count,
                                    const std::vector<SequenceStep>& sequences, const std::vector<uint64_t>& freed = {});

// A micro-batch's reply, checked against what was sent.
struct MicroBatchResult {
  std::map<uint64_t, v1::SampledToken> tokens;     // by sequence id: those that sampled
  std::map<uint64_t, std::vector<float>> logits;   // by sequence id: [num_tokens, V], if asked
  std::map<uint64_t, std::vector<v1::SampledToken>> prompt;  // by sequence id: its scored rows, if asked
  std::vector<v1::WorkerTime> timings;              // each worker the micro-batch passed
};

// Which micro-batch a reply answers (any reply, error or tokens), or none when its header does
// not parse.
struct ReplyId {
  uint64_t step_id = 0;
  uint32_t micro_batch = 0;
};
std::optional<ReplyId> PeekReply(const transport::Message& reply);

// The reply to `sent`: its error as a status with the code it had where it arose
// (transport::RemoteError), DataLoss for a malformed reply, a token missing for a sequence
// that sampled, or logits or scored prompt rows that do not match what was asked.
absl::StatusOr<MicroBatchResult> DecodeReply(const transport::Message& reply, const v1::StepHeader& sent,
                                             const transport::WireLimits& limits);

}  // namespace mmx::coordinator
