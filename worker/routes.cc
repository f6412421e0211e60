#include "worker/routes.h"

#include <map>

#include "absl/strings/str_cat.h"

namespace mmx::worker {

absl::StatusOr<Routes> BuildRoutes(const plan::ShardConfig& shard, const v1::PeerTable& table,
                                   int num_layers, int num_experts) {
  std::map<std::string, transport::PeerId> ids;
  for (const auto& p : table.peers()) ids[p.name()] = p.peer_id();
  Routes r;
  r.num_experts = num_experts;
  r.attention_owner.assign(num_layers, 0);
  if (ids.count("coordinator")) r.coordinator = ids["coordinator"];
  for (const plan::WorkerShard& w : shard.workers) {
    auto it = ids.find(w.name);
    if (it == ids.end()) return absl::InvalidArgumentError(absl::StrCat("peer table lacks worker '", w.name, "'"));
    if (w.embedding) r.head = it->second;
    if (w.lm_head) r.tail = it->second;
    if (w.attention) {
      for (int l = w.attention->begin; l < w.attention->end && l < num_layers; ++l) r.attention_owner[l] = it->second;
    }
  }
  if (table.expert_owner_size() != num_layers * num_experts) {
    return absl::InvalidArgumentError(absl::StrCat("peer table has ", table.expert_owner_size(),
                                                   " expert owners, expected ", num_layers * num_experts));
  }
  r.expert_owner.assign(table.expert_owner().begin(), table.expert_owner().end());
  return r;
}

}  // namespace mmx::worker
