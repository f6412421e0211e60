// Routes: who runs what, as data-plane peer ids, from the coordinator's peer table. Fixed for
// the life of a peer table; a worker gets a new one when the cluster changes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "mmx/v1/control.pb.h"
#include "plan/shard_config.h"
#include "transport/transport.h"

namespace mmx::worker {

struct Routes {
  transport::PeerId coordinator = 0;
  transport::PeerId head = 0;                       // holds the embedding
  transport::PeerId tail = 0;                       // holds the final norm + lm_head
  std::vector<transport::PeerId> attention_owner;   // [L]
  std::vector<transport::PeerId> expert_owner;      // [L * E], the replica chosen for each pair
  int num_experts = 0;

  transport::PeerId ExpertOwner(int layer, int expert) const {
    return expert_owner[static_cast<size_t>(layer) * num_experts + expert];
  }
};

// Builds routes from the shard config and a peer table (names -> ids, chosen expert owners).
// InvalidArgument if the table does not cover the config.
absl::StatusOr<Routes> BuildRoutes(const plan::ShardConfig& shard, const v1::PeerTable& table,
                                   int num_layers, int num_experts);

}  // namespace mmx::worker
