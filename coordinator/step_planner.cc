#include "coordinator/step_planner.h"

#include <algorithm>

namespace mmx::coordinator {

StepPlan PlanStep(const std::vector<SequenceProgress>& running, const StepLimits& limits) {
  std::vector<PlannedSequence> planned;
  int64_t budget = limits.max_step_tokens;
  StepPlan plan;
  // An interactive prompt (or replay) waiting for its chunk: the step is its own (jobs sit out).
  bool interactive_prefill = false;
  for (const SequenceProgress& s : running) {
    interactive_prefill = interactive_prefill || (s.interactive && !s.decoding() && s.context() > s.processed);
  }
  for (size_t i = 0; i < running.size(); ++i) {
    const SequenceProgress& s = running[i];
    if (!s.decoding() || (interactive_prefill && !s.interactive)) continue;
    // The last sampled token, at the position after everything processed so far.
    planned.push_back({i, s.processed, 1, /*prefill=*/false, /*sample=*/true});
    --budget;
  }
  // Prefill chunks: interactive sequences' first, then jobs', each in running order.
  bool prefill_planned = false;
  for (const bool interactive : {true, false}) {
    if (interactive_prefill && !interactive) break;
    for (size_t i = 0; i < running.size(); ++i) {
      const SequenceProgress& s = running[i];
      if (s.decoding() || s.interactive != interactive) continue;
      const int64_t left = s.context() - s.processed;
      if (left <= 0) continue;
      int64_t chunk = std::min({limits.prefill_chunk, left, std::max<int64_t>(budget, 0)});
      if (chunk == 0 && !prefill_planned) chunk = std::min(limits.prefill_chunk, left);
      if (chunk <= 0) continue;
      planned.push_back({i, s.processed, chunk, /*prefill=*/true, /*sample=*/s.processed + chunk == s.context()});
      budget -= chunk;
      plan.num_prompt_tokens += chunk;
      prefill_planned = true;
    }
  }
  const int n = static_cast<int>(planned.size());
  if (n == 0) return plan;
  const int num_mb = std::max(
      1, std::min(limits.micro_batches, n / std::max(1, limits.min_sequences_per_micro_batch)));
  plan.micro_batches.resize(num_mb);
  for (int i = 0; i < n; ++i) {
    plan.num_tokens += planned[i].num_tokens;
    plan.micro_batches[static_cast<size_t>(i) * num_mb / n].push_back(planned[i]);
  }
  return plan;
}

}  // namespace mmx::coordinator
