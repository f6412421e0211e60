// Layout: a placement indexed by cluster-spec worker (the planner's working form of a shard
// config). It converts to and from plan::ShardConfig, and says which holder of each
// (layer, expert) pair the runtime will actually send that pair's tokens to.
//
// Not here: whether a layout is valid for a model (ValidateShardConfig does that) or what it
// costs (plan/cost_model.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "plan/cluster_spec.h"
#include "plan/shard_config.h"

namespace mmx::plan {

struct WorkerRoles {
  // Its attention group (an index below Layout::num_groups), where it holds attention, embedding
  // or lm_head; expert-only workers serve every group.
  int group = 0;
  bool embedding = false;
  bool lm_head = false;
  std::optional<LayerRange> attention;
  std::vector<uint8_t> experts;  // [L * E]: 1 where this worker holds (layer, expert)

  bool Holds(int layer, int expert, int num_experts) const {
    return experts[static_cast<size_t>(layer) * num_experts + expert] != 0;
  }
  int64_t NumExperts() const;
  bool HasRole() const { return embedding || lm_head || attention.has_value() || NumExperts() > 0; }
};

struct Layout {
  int num_layers = 0;
  int num_experts = 0;
  // Attention groups (plan/shard_config.h): each has its own stages, embedding and lm_head and
  // serves its share of the sequences; the experts are shared.
  int num_groups = 1;
  std::vector<WorkerRoles> workers;  // parallel to ClusterSpec::workers

  // An empty layout (no roles) for `num_workers` workers.
  static Layout Empty(int num_layers, int num_experts, size_t num_workers);
  // Index of the worker of `group` owning layer l's attention, or -1.
  int AttentionOwner(int layer, int group = 0) const;
  // Index of the worker of `group` with `role` (embedding or lm_head), or -1.
  int Holder(bool WorkerRoles::*role, int group = 0) const;

  // For every pair, the worker the runtime routes it to ([L * E], -1 where nobody holds it):
  // plan/expert_routing.h's rule, the one the coordinator applies (co-location as group 0 sees it).
  std::vector<int> ActiveOwners() const;
};

// The layout of a shard config on `cluster`. InvalidArgument, naming the worker, if a shard
// worker is not in the cluster spec or a range or id is outside the model.
absl::StatusOr<Layout> LayoutFromShardConfig(const ShardConfig& shard, const ClusterSpec& cluster,
                                             int num_layers, int num_experts);

// The shard config for `layout`: workers in spec order, workers without a role left out, each
// worker's experts as blocks of consecutive layers that hold the same ids ("all" when complete),
// and with several groups each group's workers named `group: gN`.
ShardConfig ShardConfigFromLayout(const Layout& layout, const ClusterSpec& cluster, const std::string& model_dir,
                                  const std::string& expert_dtype);

}  // namespace mmx::plan
