// Validation of data-plane messages before any field is used: the header parses, every count
// agrees with the payload size, ids and layers are in range. A message that fails is answered
// with an error (never acted on) and the worker keeps serving.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "mmx/v1/wire.pb.h"
#include "transport/transport.h"

namespace mmx::transport {

// The model dimensions every count in a message is checked against.
struct WireLimits {
  int64_t hidden_size = 0;
  int64_t vocab_size = 0;
  int num_layers = 0;
  int num_experts = 0;
};

// Tokens (layer == -1: payload int32 [T]) or activations (layer in [0, L]: payload [T, H] in the
// header's rows_dtype, transport/activation_rows.h).
absl::StatusOr<v1::StepHeader> CheckStep(const transport::Message& message,
                                         const WireLimits& limits);
// Rows [n, H] (rows_dtype) with n expert ids and n weights; layer in [0, L), ids in [0, E).
absl::StatusOr<v1::DispatchHeader> CheckDispatch(const transport::Message& message,
                                                 const WireLimits& limits);
// Rows [num_rows, H] (rows_dtype) unless error is set (then the error, with its code: RemoteError).
absl::StatusOr<v1::CombineHeader> CheckCombine(const transport::Message& message,
                                               const WireLimits& limits,
                                               int64_t expected_rows);
// Sampled tokens in the vocabulary; payload fp32 logits [sum of logits.num_rows, V].
absl::StatusOr<v1::TokensHeader> CheckTokens(const transport::Message& message,
                                             const WireLimits& limits);

// A failure reported by a peer (the error and error_code of a TokensHeader or CombineHeader) as
// a status with the code it had where it arose; code 0 (not set) is UNAVAILABLE.
absl::Status RemoteError(int32_t code, const std::string& message);

// Total tokens of a step (sum of num_tokens).
int64_t StepTokens(const v1::StepHeader& header);

}  // namespace mmx::transport
