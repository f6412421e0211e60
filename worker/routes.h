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
  std::vector<std::vector<transport::PeerId>> expert_holders;  // [L * E], every replica, in config order
  int num_experts = 0;
  uint64_t sequence_epoch = 0;  // of the peer table they came from; steps carry theirs

  const std::vector<transport::PeerId>& ExpertHolders(int layer, int expert) const {
    return expert_holders[static_cast<size_t>(layer) * num_experts + expert];
  }
};

// Stops routing experts to `peer` (an expert host lost while every expert it held has another
// holder): it leaves every holder list where another holder remains. A list where it is the
// only holder keeps it, so sends there fail as they would anyway.
void RemoveExpertHolder(Routes& routes, transport::PeerId peer);

// Picks, for one layer of one micro-batch, the host of each expert its tokens were routed to
// (`pair_experts`: the expert id of every (token, slot) pair). Returns [E] peer ids (0 where no
// pair went). Rules, in order: a holder that is `self` runs it (no network hop); an expert with
// one holder goes there; the remaining replicated experts go, heaviest first, to the holder with
// the least work so far. Work per host is counted as pairs plus a fixed cost per expert (reading
// its weights), so hosts with replicas finish a layer together instead of one idling while the
// other works; a fixed owner per pair would balance pair *counts* per layer, not the tokens a
// step actually routes. All of one expert's pairs go to one host (its weights are read once).
// Every (layer, expert) pair has a holder: shard-config validation guarantees it.
std::vector<transport::PeerId> ChooseExpertHosts(const Routes& routes, int layer,
                                                 const std::vector<int>& pair_experts,
                                                 transport::PeerId self);

// Builds routes from the shard config and a peer table (names -> ids), for a worker of attention
// `group` (plan/shard_config.h): head, tail and the owner of each layer are that group's; the
// expert holders are every worker's (all groups share them). An expert-only worker missing from
// the table is lost with its experts held elsewhere: no expert is routed to it. InvalidArgument if
// the table lacks any other worker.
absl::StatusOr<Routes> BuildRoutes(const plan::ShardConfig& shard, const v1::PeerTable& table,
                                   int num_layers, int num_experts, const std::string& group = "");

}  // namespace mmx::worker
