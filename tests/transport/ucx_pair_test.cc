// Two processes talking UCX: the parent forks two children BEFORE anything touches UCX (UCX
// state does not survive fork), the children swap worker addresses over a socketpair, then
// exchange messages both ways and verify every payload. The parent never initializes UCX, so
// the test cases in this binary can run one after another in one process.
//
// Run with UCX's default transports (shared memory on one host) and with UCX_TLS=tcp
// UCX_NET_DEVICES=lo (set in the children before ucp_init).
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/transport/ucx_peers.h"

namespace mmx::transport::testing {
namespace {

struct PairEnv {
  const char* tls = nullptr;          // UCX_TLS, or nullptr to leave UCX's default
  const char* net_devices = nullptr;  // UCX_NET_DEVICES
  const char* expect_transport = nullptr;  // must appear in the endpoint description
};

// The body of one child. Returns its exit code.
int RunPeer(int fd, PeerId self, PeerId other, const PairEnv& env) {
  PeerEnv peer_env;
  peer_env.tls = env.tls;
  peer_env.net_devices = env.net_devices;
  absl::StatusOr<std::unique_ptr<UcxTransport>> created = ConnectPeer(fd, self, other, peer_env);
  PEER_CHECK(created.ok(), "connect: %s", created.status().ToString().c_str());
  std::unique_ptr<UcxTransport> transport = std::move(*created);
  absl::Status status;

  // 0 B to 1 MiB payloads with small headers; the last two carry a 20 KiB header, which is
  // over UCX's AM header limit and so travels in front of the payload (kUcxAmIdSplit).
  const size_t sizes[] = {0, 100, 12 << 10, 1 << 20, 100, 1 << 20};
  auto header_for = [](size_t i) {
    return i < 4 ? "size=" + std::to_string(i) : std::string(20 << 10, static_cast<char>('a' + i));
  };
  // Send everything first, then receive: rendezvous sends from both sides overlap.
  for (size_t i = 0; i < std::size(sizes); ++i) {
    const uint64_t key = 100 * self + i;
    const std::vector<uint8_t> payload = Pattern(sizes[i], key);
    status = transport->Send(other, key, header_for(i), payload.data(), payload.size());
    PEER_CHECK(status.ok(), "Send %zu bytes: %s", sizes[i], status.ToString().c_str());
  }
  for (size_t i = 0; i < std::size(sizes); ++i) {
    const uint64_t key = 100 * other + i;
    absl::StatusOr<Message> m = transport->Receive(other, key, absl::Seconds(20));
    PEER_CHECK(m.ok(), "Receive key %llu: %s", static_cast<unsigned long long>(key),
                m.status().ToString().c_str());
    PEER_CHECK(m->header == header_for(i), "header of message %zu differs", i);
    PEER_CHECK(m->payload == Pattern(sizes[i], key), "payload of %zu bytes differs", sizes[i]);
  }
  // A ping-pong round on top, so each side also receives while the other waits for it.
  for (int round = 0; round < 20; ++round) {
    const std::vector<uint8_t> payload = Pattern(round % 2 ? 12 << 10 : 8, 1000 + round);
    if ((round % 2 == 0) == (self == 1)) {
      status = transport->Send(other, 1000 + round, "", payload.data(), payload.size());
      PEER_CHECK(status.ok(), "ping %d: %s", round, status.ToString().c_str());
    } else {
      absl::StatusOr<Message> m = transport->Receive(other, 1000 + round, absl::Seconds(20));
      PEER_CHECK(m.ok() && m->payload == payload, "pong %d", round);
    }
  }
  PEER_CHECK(transport->dropped_messages() == 0, "dropped %llu",
              static_cast<unsigned long long>(transport->dropped_messages()));

  if (env.expect_transport != nullptr) {
    absl::StatusOr<std::string> info = transport->DescribeEndpoint(other);
    PEER_CHECK(info.ok(), "DescribeEndpoint: %s", info.status().ToString().c_str());
    PEER_CHECK(info->find(env.expect_transport) != std::string::npos,
                "expected transport '%s' in:\n%s", env.expect_transport, info->c_str());
    if (self == 1) std::fprintf(stderr, "[peer 1] endpoint:\n%s", info->c_str());
  }
  // Nobody closes an endpoint while the other side may still be pulling from it; then both
  // tear down at once, as a cluster does at shutdown.
  PEER_CHECK(Barrier(fd), "barrier before exit");
  transport.reset();
  return 0;
}

void RunPair(const PairEnv& env) {
  const auto [first, second] = RunPeers(
      [&env](int fd, PeerId self, PeerId other) { return RunPeer(fd, self, other, env); }, absl::Seconds(60));
  EXPECT_EQ(first, 0) << "peer 1 failed (its stderr says why)";
  EXPECT_EQ(second, 0) << "peer 2 failed (its stderr says why)";
}

TEST(UcxPairTest, SharedMemoryByDefault) {
  PairEnv env;
  env.expect_transport = "/memory";  // sysv/posix/cma: UCX names its shm devices "memory"
  RunPair(env);
}

TEST(UcxPairTest, TcpOnLoopback) {
  PairEnv env;
  env.tls = "tcp";
  env.net_devices = "lo";
  env.expect_transport = "tcp";
  RunPair(env);
}

}  // namespace
}  // namespace mmx::transport::testing
