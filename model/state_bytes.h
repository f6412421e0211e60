// How many bytes a sequence's attention state takes, as SequenceState holds it: the lightning
// state of each lightning layer ([N, D, D] fp32) and the softmax layers' KV cache in the served
// dtype, counted in whole blocks of kKvBlockTokens rows (model/kv_cache.h). The planner
// (plan/cost_model.h), admission (coordinator/state_budget.h) and SequenceState::bytes() all
// count through these functions, so they cannot disagree. Light on purpose (no kernels): the
// planner and the parsers use it.
#pragma once

#include <cstdint>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "base/dtype.h"
#include "model/config.h"

namespace mmx::model {

// Rows per KV block: the CPU attention kernel's key block (kernels::kKvKeyBlock), so no key
// block straddles two.
inline constexpr int64_t kKvBlockTokens = 64;

// "bf16" (as the model is served, the default) or "fp32" (golden-exact); anything else is
// InvalidArgument naming both.
absl::StatusOr<DType> ParseKvDType(absl::string_view name);
// "bf16" or "fp32".
const char* KvDTypeName(DType kv_dtype);

// Rows a cache of `positions` tokens holds: whole blocks.
inline int64_t KvRowsHeld(int64_t positions) {
  return (positions + kKvBlockTokens - 1) / kKvBlockTokens * kKvBlockTokens;
}
// Bytes one token's K and V take in one softmax layer: 2 * Nkv * D * sizeof(dtype).
int64_t KvBytesPerToken(const ModelConfig& config, DType kv_dtype);
// Bytes of one lightning layer's state for one sequence: N * D * D fp32.
int64_t LightningStateBytes(const ModelConfig& config);
// Bytes a sequence of `positions` tokens holds on layers [begin, end): lightning states plus
// the softmax layers' KV blocks.
int64_t SequenceStateBytes(const ModelConfig& config, int begin, int end, int64_t positions, DType kv_dtype);

}  // namespace mmx::model
