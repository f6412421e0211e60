// Two forked processes with a UcxTransport each, for tests of the UCX data plane between
// processes. The parent forks both children BEFORE anything touches UCX (UCX state does not
// survive fork) and never initializes UCX itself, so test cases can run one after another in
// one binary. The children swap worker addresses over a socketpair and connect.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "transport/ucx_transport.h"

namespace mmx::transport::testing {

// What a child sets up before UCX reads its environment.
struct PeerEnv {
  const char* tls = nullptr;          // UCX_TLS, or nullptr to leave mmx's default
  const char* net_devices = nullptr;  // UCX_NET_DEVICES
  UcxTransportOptions options;
};

// Deterministic pseudo-random bytes for `seed`: payloads that show any misplaced byte.
std::vector<uint8_t> Pattern(size_t n, uint64_t seed);

// Both sides return once the other has reached the same point.
bool Barrier(int fd);

// In a child: applies `env`, creates the transport, swaps addresses over `fd`, connects `other`
// and waits until the other side has connected too (a message from a peer not yet connected
// would be dropped as from a stranger).
absl::StatusOr<std::unique_ptr<UcxTransport>> ConnectPeer(int fd, PeerId self, PeerId other,
                                                          const PeerEnv& env);

// In a child's body (where `self` is its peer id): prints where and why, and returns 1.
#define PEER_CHECK(cond, ...)                                              \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::fprintf(stderr, "[peer %u] %s:%d: ", self, __FILE__, __LINE__); \
      std::fprintf(stderr, __VA_ARGS__);                                   \
      std::fprintf(stderr, "\n");                                          \
      return 1;                                                            \
    }                                                                      \
  } while (0)

// The body of a child: peer id 1 or 2, the other's id, the socketpair end. Returns the exit code
// (non-zero after printing why to stderr).
using PeerBody = std::function<int(int fd, PeerId self, PeerId other)>;

// Forks peers 1 and 2 running `body`, waits for both up to `limit` (then kills them) and returns
// their exit codes (-1 for killed or crashed).
std::pair<int, int> RunPeers(const PeerBody& body, absl::Duration limit);

}  // namespace mmx::transport::testing
