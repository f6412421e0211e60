// PlanStep: what one step carries, as a pure function of the running sequences' progress and
// the step's limits (no I/O, no clock, no locks; coordinator/scheduler.h does those).
//
// Every decoding sequence's next token first, then prefill chunks (at most prefill_chunk per
// sequence; interactive sequences' before batch jobs', each in running order) within the step's
// token budget, so long prompts are prefilled a
// chunk at a time between decode steps instead of stalling them; the first prompt in line always
// gets a chunk, so prefill always progresses. A sequence whose state was lost (failover) is
// prefilled the same way over its prompt and the tokens it generated: its replay. The step is then split into micro-batches (as many
// as wanted, with at least min_sequences_per_micro_batch sequences each), contiguous in order.
//
// While an interactive sequence has prompt (or replay) left to prefill, batch jobs' sequences sit
// out: the step carries interactive work only, so a user's first token costs what it costs alone
// plus the wait for the step in flight, not a step the size of the job's batch (which on a CPU
// costs several lone prompts). Jobs lose those steps; interactive prompts are few and short next
// to a job's work, and they come first by design.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace mmx::coordinator {

// A running sequence as the planner sees it. Its context is the prompt followed by the tokens
// sampled so far; `processed` of them have state on the stages.
struct SequenceProgress {
  int64_t prompt_length = 0;
  int64_t generated = 0;  // tokens sampled so far
  int64_t processed = 0;  // context positions the stages hold state for
  bool interactive = true;  // a Generate call's, not a batch job's: its prompt goes first
  int64_t context() const { return prompt_length + generated; }
  // Only the last sampled token is left to feed: the next step decodes it.
  bool decoding() const { return generated > 0 && processed == context() - 1; }
};

struct StepLimits {
  int64_t prefill_chunk = 256;
  int64_t max_step_tokens = 1024;
  int micro_batches = 1;  // wanted, when there are enough sequences
  int min_sequences_per_micro_batch = 4;
};

// One sequence's part of a step.
struct PlannedSequence {
  size_t index = 0;            // into the `running` list that was planned
  // The context tokens [start_position, start_position + num_tokens) are fed.
  int64_t start_position = 0;  // tokens the sequence has processed before this step
  int64_t num_tokens = 0;
  bool prefill = false;        // a chunk of the prompt (or of a replay); else one decode token
  bool sample = false;         // the chunk reaches the context's end: the tail samples a token
};

struct StepPlan {
  std::vector<std::vector<PlannedSequence>> micro_batches;  // none when there is nothing to run
  int64_t num_tokens = 0;
  int64_t num_prompt_tokens = 0;  // prefill chunk tokens (prompt and replay)
  bool empty() const { return micro_batches.empty(); }
};

StepPlan PlanStep(const std::vector<SequenceProgress>& running, const StepLimits& limits);

}  // namespace mmx::coordinator
