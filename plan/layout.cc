#include "plan/layout.h"

#include <algorithm>

#include "plan/expert_routing.h"

#include "absl/strings/str_cat.h"

namespace mmx::plan {

int64_t WorkerRoles::NumExperts() const {
  int64_t n = 0;
  for (uint8_t held : experts) n += held;
  return n;
}

Layout Layout::Empty(int num_layers, int num_experts, size_t num_workers) {
  Layout layout;
  layout.num_layers = num_layers;
  layout.num_experts = num_experts;
  layout.workers.resize(num_workers);
  for (WorkerRoles& w : layout.workers) w.experts.assign(static_cast<size_t>(num_layers) * num_experts, 0);
  return layout;
}

int Layout::AttentionOwner(int layer, int group) const {
  for (size_t w = 0; w < workers.size(); ++w) {
    const WorkerRoles& r = workers[w];
    if (r.group == group && r.attention && r.attention->Contains(layer)) return static_cast<int>(w);
  }
  return -1;
}

int Layout::Holder(bool WorkerRoles::*role, int group) const {
  for (size_t w = 0; w < workers.size(); ++w) {
    if (workers[w].group == group && workers[w].*role) return static_cast<int>(w);
  }
  return -1;
}

std::vector<int> Layout::ActiveOwners() const {
  return RouteExperts(
      static_cast<int>(workers.size()), num_layers, num_experts,
      [&](int w, int l, int e) { return workers[w].Holds(l, e, num_experts); },
      [&](int l) { return AttentionOwner(l); });
}

absl::StatusOr<Layout> LayoutFromShardConfig(const ShardConfig& shard, const ClusterSpec& cluster, int num_layers,
                                             int num_experts) {
  const std::vector<std::string> groups = AttentionGroups(shard);
  Layout layout = Layout::Empty(num_layers, num_experts, cluster.workers.size());
  layout.num_groups = std::max<int>(1, static_cast<int>(groups.size()));
  for (const WorkerShard& ws : shard.workers) {
    const int w = cluster.Find(ws.name);
    if (w < 0) {
      return absl::InvalidArgumentError(absl::StrCat("shard config worker '", ws.name,
                                                     "' is not in the cluster spec (names must match, e.g. h100-0)"));
    }
    WorkerRoles& roles = layout.workers[w];
    if (!ws.experts_only()) {
      roles.group = static_cast<int>(std::find(groups.begin(), groups.end(), ws.group) - groups.begin());
    }
    roles.embedding = ws.embedding;
    roles.lm_head = ws.lm_head;
    roles.attention = ws.attention;
    if (ws.attention && ws.attention->end > num_layers) {
      return absl::InvalidArgumentError(absl::StrCat("worker '", ws.name, "': attention range goes past layer ",
                                                     num_layers));
    }
    for (int l = 0; l < num_layers; ++l) {
      for (int e : ws.ExpertsOfLayer(l, num_experts)) {
        if (e < 0 || e >= num_experts) {
          return absl::InvalidArgumentError(absl::StrCat("worker '", ws.name, "': expert id ", e, " is outside [0, ",
                                                         num_experts, ")"));
        }
        roles.experts[static_cast<size_t>(l) * num_experts + e] = 1;
      }
    }
  }
  return layout;
}

ShardConfig ShardConfigFromLayout(const Layout& layout, const ClusterSpec& cluster, const std::string& model_dir,
                                  const std::string& expert_dtype) {
  const int L = layout.num_layers, E = layout.num_experts;
  ShardConfig shard;
  shard.model = model_dir;
  shard.expert_dtype = expert_dtype;
  shard.kv_dtype = cluster.serving.kv_dtype;
  shard.wire_dtype = cluster.serving.wire_dtype;
  for (size_t w = 0; w < layout.workers.size(); ++w) {
    const WorkerRoles& roles = layout.workers[w];
    if (!roles.HasRole()) continue;
    WorkerShard ws;
    ws.name = cluster.workers[w].name;
    ws.device = ShardDevice(cluster.workers[w]);
    ws.embedding = roles.embedding;
    ws.lm_head = roles.lm_head;
    ws.attention = roles.attention;
    if (layout.num_groups > 1 && (roles.attention || roles.embedding || roles.lm_head)) {
      ws.group = absl::StrCat("g", roles.group);
    }
    // Runs of consecutive layers with the same id set become one block.
    for (int l = 0; l < L; ++l) {
      std::vector<int> ids;
      for (int e = 0; e < E; ++e) {
        if (roles.Holds(l, e, E)) ids.push_back(e);
      }
      if (ids.empty()) continue;
      const bool all = static_cast<int>(ids.size()) == E;
      if (!ws.experts.empty()) {
        ExpertBlock& last = ws.experts.back();
        if (last.layers.end == l && last.all == all && (all || last.ids == ids)) {
          last.layers.end = l + 1;
          continue;
        }
      }
      ExpertBlock block;
      block.layers = {l, l + 1};
      block.all = all;
      if (!all) block.ids = std::move(ids);
      ws.experts.push_back(std::move(block));
    }
    shard.workers.push_back(std::move(ws));
  }
  return shard;
}

}  // namespace mmx::plan
