// Waves: the running sequences are split into waves whose steps go out separately, so that
// several steps are in flight at once (scheduler.h) and every stage has work while the others
// run theirs. A sequence stays in its wave; a new one joins the wave whose next step carries the
// fewest tokens. Pure functions: no I/O, no clock.
#pragma once

#include <cstdint>
#include <vector>

#include "coordinator/step_planner.h"

namespace mmx::coordinator {

// The tokens `s` would put in its wave's next step: one to decode, or its next prefill chunk.
int64_t NextStepTokens(const SequenceProgress& s, int64_t prefill_chunk);

// The wave a new sequence joins, given each wave's next-step tokens and which ones have a step
// out now: the fewest tokens; among equals one with no step out (it leaves at once), then the
// first.
int ChooseWave(const std::vector<int64_t>& tokens, const std::vector<bool>& busy);

}  // namespace mmx::coordinator
