// NetnsTopology: a private network for a fault test. One network namespace per node (the
// client, the coordinator, each worker), each joined by a veth pair to a bridge that lives in a
// namespace of its own; addresses 10.77.0.0/24 exist only inside them. Faults act on one node:
// its link down (the bridge side of its veth), or a share of its packets dropped at random
// (nftables in its namespace; this kernel has no netem). Everything is removed by the
// destructor, and leftovers of an earlier run by Create.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace mmx::testing {

class NetnsTopology {
 public:
  // FailedPrecondition, saying why, where namespaces cannot be made (not root, no iproute2).
  static absl::StatusOr<std::unique_ptr<NetnsTopology>> Create(const std::vector<std::string>& nodes);
  ~NetnsTopology();

  std::string Namespace(const std::string& node) const;
  std::string Address(const std::string& node) const;  // its IPv4 address
  // The argv that runs a program in the node's namespace, its data plane on UCX over TCP on
  // the node's link (shared memory would bypass the network, and the faults).
  std::vector<std::string> Prefix(const std::string& node) const;

  // Moves the calling thread (and the threads it starts later) into the node's namespace.
  absl::Status Enter(const std::string& node);
  // Back to the namespace the thread was in at Create.
  void Leave();

  absl::Status SetLink(const std::string& node, bool up);
  // Drops `percent`% of the node's packets, both ways, at random; 0 removes the rule.
  absl::Status DropRandomly(const std::string& node, int percent);
  static bool HasNft();

 private:
  NetnsTopology() = default;
  absl::Status Build(const std::vector<std::string>& nodes);
  static void RemoveAll();

  std::map<std::string, int> index_;  // node -> 1..n
  int original_ns_ = -1;
};

}  // namespace mmx::testing
