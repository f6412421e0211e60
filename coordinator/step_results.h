// ApplyResult: what one micro-batch's result does to its requests (no I/O): prompt progress,
// returned logits, and for each sequence that sampled its token (with log-probabilities and
// text), then the end of the request on a stop id, a stop string or max_tokens.
#pragma once

#include <vector>

#include "absl/time/time.h"
#include "coordinator/metrics.h"
#include "coordinator/request.h"
#include "coordinator/step_codec.h"
#include "coordinator/step_planner.h"

namespace mmx::coordinator {

// `members[i]` ran as `planned[i]` in the micro-batch whose result this is. A request that ended
// meanwhile (cancelled) keeps its progress and gets no token. `metrics` may be null.
void ApplyResult(const std::vector<Request*>& members, const std::vector<PlannedSequence>& planned,
                 const MicroBatchResult& result, int64_t vocab_size, absl::Time now, Metrics* metrics);

}  // namespace mmx::coordinator
