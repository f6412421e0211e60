// Two processes talking UCX: the parent forks two children BEFORE anything touches UCX (UCX
// state does not survive fork), the children swap worker addresses over a socketpair, then
// exchange messages both ways and verify every payload. The parent never initializes UCX, so
// the test cases in this binary can run one after another in one process.
//
// Run with UCX's default transports (shared memory on one host) and with UCX_TLS=tcp
// UCX_NET_DEVICES=lo (set in the children before ucp_init).
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "transport/ucx_transport.h"

namespace mmx::transport {
namespace {

constexpr ClusterToken kToken{0xFA11BAC4, 2};

struct PairEnv {
  const char* tls = nullptr;          // UCX_TLS, or nullptr to leave UCX's default
  const char* net_devices = nullptr;  // UCX_NET_DEVICES
  const char* expect_transport = nullptr;  // must appear in the endpoint description
};

std::vector<uint8_t> Pattern(size_t n, uint64_t seed) {
  std::vector<uint8_t> bytes(n);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t i = 0; i < n; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    bytes[i] = static_cast<uint8_t>(x);
  }
  return bytes;
}

bool WriteAll(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    ssize_t n = write(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

bool ReadAll(int fd, void* data, size_t size) {
  char* p = static_cast<char*>(data);
  while (size > 0) {
    ssize_t n = read(fd, p, size);
    if (n <= 0) return false;
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

// Both sides wait here until the other has reached the same point.
bool Barrier(int fd) {
  char token = 'b';
  return WriteAll(fd, &token, 1) && ReadAll(fd, &token, 1);
}

#define CHILD_CHECK(cond, ...)                                                  \
  do {                                                                          \
    if (!(cond)) {                                                              \
      std::fprintf(stderr, "[peer %u] %s:%d: ", self, __FILE__, __LINE__);      \
      std::fprintf(stderr, __VA_ARGS__);                                        \
      std::fprintf(stderr, "\n");                                               \
      return 1;                                                                 \
    }                                                                           \
  } while (0)

// The body of one child. Returns its exit code.
int RunPeer(int fd, PeerId self, PeerId other, const PairEnv& env) {
  // Only this child's environment changes; UCX reads it in ucp_config_read.
  if (env.tls != nullptr) {
    setenv("UCX_TLS", env.tls, 1);
  } else {
    unsetenv("UCX_TLS");
  }
  if (env.net_devices != nullptr) {
    setenv("UCX_NET_DEVICES", env.net_devices, 1);
  } else {
    unsetenv("UCX_NET_DEVICES");
  }
  absl::StatusOr<std::unique_ptr<UcxTransport>> created =
      UcxTransport::Create(TransportOptions{self, kToken});
  CHILD_CHECK(created.ok(), "Create: %s", created.status().ToString().c_str());
  std::unique_ptr<UcxTransport> transport = std::move(*created);

  const std::string mine = transport->LocalAddress();
  const uint32_t length = static_cast<uint32_t>(mine.size());
  CHILD_CHECK(WriteAll(fd, &length, 4) && WriteAll(fd, mine.data(), mine.size()), "send address");
  uint32_t theirs_length = 0;
  CHILD_CHECK(ReadAll(fd, &theirs_length, 4) && theirs_length < 4096, "read address length");
  std::string theirs(theirs_length, '\0');
  CHILD_CHECK(ReadAll(fd, theirs.data(), theirs.size()), "read address");
  absl::Status status = transport->Connect(other, theirs);
  CHILD_CHECK(status.ok(), "Connect: %s", status.ToString().c_str());
  // Messages from a peer we have not connected yet would be dropped as from a stranger.
  CHILD_CHECK(Barrier(fd), "barrier after connect");

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
    CHILD_CHECK(status.ok(), "Send %zu bytes: %s", sizes[i], status.ToString().c_str());
  }
  for (size_t i = 0; i < std::size(sizes); ++i) {
    const uint64_t key = 100 * other + i;
    absl::StatusOr<Message> m = transport->Receive(other, key, absl::Seconds(20));
    CHILD_CHECK(m.ok(), "Receive key %llu: %s", static_cast<unsigned long long>(key),
                m.status().ToString().c_str());
    CHILD_CHECK(m->header == header_for(i), "header of message %zu differs", i);
    CHILD_CHECK(m->payload == Pattern(sizes[i], key), "payload of %zu bytes differs", sizes[i]);
  }
  // A ping-pong round on top, so each side also receives while the other waits for it.
  for (int round = 0; round < 20; ++round) {
    const std::vector<uint8_t> payload = Pattern(round % 2 ? 12 << 10 : 8, 1000 + round);
    if ((round % 2 == 0) == (self == 1)) {
      status = transport->Send(other, 1000 + round, "", payload.data(), payload.size());
      CHILD_CHECK(status.ok(), "ping %d: %s", round, status.ToString().c_str());
    } else {
      absl::StatusOr<Message> m = transport->Receive(other, 1000 + round, absl::Seconds(20));
      CHILD_CHECK(m.ok() && m->payload == payload, "pong %d", round);
    }
  }
  CHILD_CHECK(transport->dropped_messages() == 0, "dropped %llu",
              static_cast<unsigned long long>(transport->dropped_messages()));

  if (env.expect_transport != nullptr) {
    absl::StatusOr<std::string> info = transport->DescribeEndpoint(other);
    CHILD_CHECK(info.ok(), "DescribeEndpoint: %s", info.status().ToString().c_str());
    CHILD_CHECK(info->find(env.expect_transport) != std::string::npos,
                "expected transport '%s' in:\n%s", env.expect_transport, info->c_str());
    if (self == 1) std::fprintf(stderr, "[peer 1] endpoint:\n%s", info->c_str());
  }
  // Nobody closes an endpoint while the other side may still be pulling from it; then both
  // tear down at once, as a cluster does at shutdown.
  CHILD_CHECK(Barrier(fd), "barrier before exit");
  transport.reset();
  return 0;
}

// Waits for `pid` up to `limit`; kills it past that. Returns the exit code, or -1.
int WaitFor(pid_t pid, absl::Duration limit) {
  const absl::Time give_up = absl::Now() + limit;
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (done < 0) return -1;
    if (absl::Now() > give_up) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void RunPair(const PairEnv& env) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t first = fork();
  ASSERT_GE(first, 0);
  if (first == 0) {
    close(fds[1]);
    _exit(RunPeer(fds[0], 1, 2, env));
  }
  const pid_t second = fork();
  if (second == 0) {
    close(fds[0]);
    _exit(RunPeer(fds[1], 2, 1, env));
  }
  close(fds[0]);
  close(fds[1]);
  const int first_code = WaitFor(first, absl::Seconds(60));
  const int second_code = second > 0 ? WaitFor(second, absl::Seconds(60)) : -1;
  EXPECT_EQ(first_code, 0) << "peer 1 failed (its stderr says why)";
  EXPECT_EQ(second_code, 0) << "peer 2 failed (its stderr says why)";
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
}  // namespace mmx::transport
