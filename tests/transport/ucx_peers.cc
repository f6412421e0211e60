#include "tests/transport/ucx_peers.h"

#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <utility>

#include "base/fd_io.h"
#include "base/status_macros.h"

namespace mmx::transport::testing {
namespace {

constexpr ClusterToken kToken{0xFA11BAC4, 2};

void SetOrUnset(const char* name, const char* value) {
  if (value != nullptr) {
    setenv(name, value, 1);
  } else {
    unsetenv(name);
  }
}

// Waits for `pid` until `give_up`; kills it past that. Returns the exit code, or -1.
int WaitFor(pid_t pid, absl::Time give_up) {
  for (;;) {
    int status = 0;
    const pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    if (done < 0) return -1;
    if (absl::Now() > give_up) {
      std::fprintf(stderr, "peer process %d still running at the time limit: killed\n", pid);
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace

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

bool Barrier(int fd) {
  char token = 'b';
  return WriteAll(fd, &token, 1) && ReadAll(fd, &token, 1);
}

absl::StatusOr<std::unique_ptr<UcxTransport>> ConnectPeer(int fd, PeerId self, PeerId other,
                                                          const PeerEnv& env) {
  // Only this child's environment changes; UCX reads it in ucp_config_read.
  SetOrUnset("UCX_TLS", env.tls);
  SetOrUnset("UCX_NET_DEVICES", env.net_devices);
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<UcxTransport> transport,
                       UcxTransport::Create(TransportOptions{self, kToken}, env.options));
  const std::string mine = transport->LocalAddress();
  const uint32_t length = static_cast<uint32_t>(mine.size());
  uint32_t theirs_length = 0;
  if (!WriteAll(fd, &length, 4) || !WriteAll(fd, mine.data(), mine.size()) ||
      !ReadAll(fd, &theirs_length, 4) || theirs_length >= 4096) {
    return absl::UnavailableError("address exchange over the socketpair failed");
  }
  std::string theirs(theirs_length, '\0');
  if (!ReadAll(fd, theirs.data(), theirs.size())) return absl::UnavailableError("reading the address");
  MMX_RETURN_IF_ERROR(transport->Connect(other, theirs));
  if (!Barrier(fd)) return absl::UnavailableError("barrier after connect");
  return transport;
}

std::pair<int, int> RunPeers(const PeerBody& body, absl::Duration limit) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return {-1, -1};
  std::fflush(nullptr);  // nothing buffered may be written twice
  const pid_t first = fork();
  if (first == 0) {
    close(fds[1]);
    _exit(body(fds[0], 1, 2));
  }
  const pid_t second = first < 0 ? -1 : fork();
  if (second == 0) {
    close(fds[0]);
    _exit(body(fds[1], 2, 1));
  }
  close(fds[0]);
  close(fds[1]);
  const absl::Time give_up = absl::Now() + limit;
  const int first_code = first > 0 ? WaitFor(first, give_up) : -1;
  const int second_code = second > 0 ? WaitFor(second, give_up) : -1;
  return {first_code, second_code};
}

}  // namespace mmx::transport::testing
