#include "worker/routes.h"

#include <algorithm>
#include <cstdint>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::worker {

absl::StatusOr<Routes> BuildRoutes(const plan::ShardConfig& shard, const v1::PeerTable& table,
                                   int num_layers, int num_experts, const std::string& group) {
  std::map<std::string, transport::PeerId> ids;
  for (const auto& p : table.peers()) ids[p.name()] = p.peer_id();
  Routes r;
  r.sequence_epoch = table.sequence_epoch();
  r.num_experts = num_experts;
  r.attention_owner.assign(num_layers, 0);
  if (ids.count("coordinator")) r.coordinator = ids["coordinator"];
  for (const plan::WorkerShard& w : shard.workers) {
    auto it = ids.find(w.name);
    if (it == ids.end() && w.experts_only()) continue;  // lost, its experts held elsewhere: routed around
    if (it == ids.end()) return absl::InvalidArgumentError(absl::StrCat("peer table lacks worker '", w.name, "'"));
    if (w.group != group) continue;  // another attention group's stage (its experts are below)
    if (w.embedding) r.head = it->second;
    if (w.lm_head) r.tail = it->second;
    if (w.attention) {
      for (int l = w.attention->begin; l < w.attention->end && l < num_layers; ++l) r.attention_owner[l] = it->second;
    }
  }
  r.expert_holders.assign(static_cast<size_t>(num_layers) * num_experts, {});
  for (const plan::WorkerShard& w : shard.workers) {
    if (!ids.count(w.name)) continue;
    const transport::PeerId id = ids.at(w.name);
    for (int l = 0; l < num_layers; ++l) {
      for (int e : w.ExpertsOfLayer(l, num_experts)) {
        auto& holders = r.expert_holders[static_cast<size_t>(l) * num_experts + e];
        if (std::find(holders.begin(), holders.end(), id) == holders.end()) holders.push_back(id);
      }
    }
  }
  return r;
}

void RemoveExpertHolder(Routes& routes, transport::PeerId peer) {
  for (std::vector<transport::PeerId>& holders : routes.expert_holders) {
    if (holders.size() < 2) continue;
    holders.erase(std::remove(holders.begin(), holders.end(), peer), holders.end());
  }
}

std::vector<transport::PeerId> ChooseExpertHosts(const Routes& routes, int layer,
                                                 const std::vector<int>& pair_experts,
                                                 transport::PeerId self) {
  // One expert's weights cost about as much to read as two tokens cost to compute through it
  // (bf16 expert GEMMs on a CPU core at a few tokens each); the exact figure only shifts ties.
  constexpr int64_t kPerExpertCost = 2;
  const int E = routes.num_experts;
  std::vector<int64_t> pairs(E, 0);
  for (int e : pair_experts) ++pairs[e];
  std::vector<transport::PeerId> host(E, 0);
  std::map<transport::PeerId, int64_t> load;
  std::vector<int> open;
  for (int e = 0; e < E; ++e) {
    if (pairs[e] == 0) continue;
    const std::vector<transport::PeerId>& holders = routes.ExpertHolders(layer, e);
    MMX_CHECK(!holders.empty());  // ValidateShardConfig: every (layer, expert) pair is hosted
    if (holders.size() == 1) {
      host[e] = holders.front();
    } else if (std::find(holders.begin(), holders.end(), self) != holders.end()) {
      host[e] = self;
    } else {
      open.push_back(e);
      continue;
    }
    load[host[e]] += pairs[e] + kPerExpertCost;
  }
  // Heaviest first (ties by id): the greedy rule that keeps the final imbalance small.
  std::stable_sort(open.begin(), open.end(), [&](int a, int b) { return pairs[a] > pairs[b]; });
  for (int e : open) {
    transport::PeerId best = 0;
    int64_t best_load = INT64_MAX;
    for (transport::PeerId h : routes.ExpertHolders(layer, e)) {
      const int64_t l = load.count(h) ? load[h] : 0;
      if (l < best_load) {
        best = h;
        best_load = l;
      }
    }
    host[e] = best;
    load[best] += pairs[e] + kPerExpertCost;
  }
  return host;
}

}  // namespace mmx::worker
