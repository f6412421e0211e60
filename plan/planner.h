// Plan: the shard config a cluster should run a model with, and what it will cost.
//
// How it decides (docs/capacity-planning.md has the why):
//   1. Rank workers by how fast they run one attention layer at the serving target.
//   2. For k = 1, 2, ... take the k fastest as attention stages (in spec order), split the layers
//      among them in proportion to speed within their memory (plan/attention_partition.h),
//      embedding on the first, lm_head on the last.
//   3. Deal the experts over every worker with memory left, by expert speed (bandwidth and NIC)
//      within memory (plan/expert_placement.h).
//   4. Keep the k whose predicted decode step (plan/cost_model.h) is shortest; then spend spare
//      memory on expert replicas where they do not slow the step.
//   5. Try 2, 3, ... attention groups (each its own k stages taken from the fastest candidates,
//      each holding state for its share of the sequences, the experts shared) the same way, and
//      keep the most groups whose predicted tokens/s beats the fewer groups' by more than 5%.
// Deterministic: the same inputs give the same plan, byte for byte.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/config.h"
#include "plan/cluster_spec.h"
#include "plan/cost_model.h"
#include "plan/layout.h"
#include "plan/shard_config.h"

namespace mmx::plan {

// One change that would make a cluster fit (each is enough alone).
struct ShortfallFix {
  int64_t more_workers = 0;  // this many more workers like cluster.workers[like_worker]
  int like_worker = -1;
  bool int8_experts = false;
  int64_t max_context = 0;   // serve this context at most (with int8_experts when both are set)
  int max_sequences = 0;     // serve this many sequences at most
};

struct PlanResult {
  bool fits = false;
  // When it fits:
  Layout layout;
  ShardConfig shard;        // model: the model directory given to Plan
  Prediction prediction;
  int num_stages = 0;              // per attention group
  int num_groups = 1;
  double one_group_tokens_per_s = 0;  // the best layout's prediction with one group, for the report
  // When it does not fit:
  int64_t short_bytes = 0;  // memory missing in total; 0 when the total suffices but cannot be split
  std::string shortfall;    // "needs 112.4 GiB more memory; smallest fix: 5 more 24 GiB workers or ..."
  std::vector<ShortfallFix> fixes;  // what `shortfall` names after "smallest fix"
};

inline constexpr int kMaxAttentionGroups = 8;

struct PlanOptions {
  bool replicas = true;  // step 4: spend spare memory on expert replicas
  bool groups = true;    // step 5: consider attention groups
};

// Plans `config` on `cluster` (its serving target included). Any well-formed input gives a
// result: a cluster that cannot hold the model gives fits = false and the shortfall.
PlanResult Plan(const model::ModelConfig& config, const ClusterSpec& cluster, const std::string& model_dir,
                const PlanOptions& options = {});

// True when some layout of `config` fits `cluster` (the first one found; no optimisation).
bool Fits(const model::ModelConfig& config, const ClusterSpec& cluster);

// "112.4 GiB" (one decimal).
std::string FormatGiB(int64_t bytes);

}  // namespace mmx::plan
