// How much work the scheduler keeps in flight when its counts are automatic, and whether the
// workers of a cluster share cores, which decides it. Workers on one host that together ask for
// more threads than the host has cores take turns on the same cores: neither a second
// micro-batch nor a second step in flight can then overlap one worker's work with another's
// (MegaScale-Infer's ping-pong needs hardware that would otherwise idle); each would only read
// the weights again.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "mmx/v1/control.pb.h"
#include "plan/shard_config.h"

namespace mmx::coordinator {

// "" when no host is oversubscribed; otherwise a description of the first one that is, e.g.
// "host 'box' runs 4 workers with 8 threads on 2 cores". Workers that did not report a host or
// their cores (older workers) are assumed to have a host of their own.
std::string DescribeCoreSharing(const std::vector<v1::Register>& workers);
// The hosts (Register.host) whose workers together ask for more threads than the host has cores.
std::set<std::string> HostsSharingCores(const std::vector<v1::Register>& workers);

struct AutomaticOverlap {
  // 2 where a stage's layers have experts on other workers (the attention of one micro-batch
  // runs while the expert hosts work on the other's rows), else 1: with every expert local there
  // is nothing to overlap within a stage, and a second micro-batch reads the weights again.
  int micro_batches = 1;
  // Per attention group: the plan's count (the shard config's serving.steps_in_flight), else one
  // per stage of the longest group: each stage has a step to work on while the others run theirs.
  int steps_in_flight = 1;
  std::string sharing;  // DescribeCoreSharing's finding, or "there is one worker"; "" if neither
};
AutomaticOverlap ChooseOverlap(const plan::ShardConfig& shard, const std::vector<v1::Register>& workers,
                               int num_experts);

}  // namespace mmx::coordinator
