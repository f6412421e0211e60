// A send to a peer that stops answering must not hang its sender: once the control plane
// disconnects the peer, Send gives up with UNAVAILABLE. (A peer that is already dead when a
// send starts is reported by UCX itself; the dangerous case is a rendezvous whose peer stops
// mid-way, e.g. a hung machine.) Two forked processes: the peer connects and then stops itself
// (SIGSTOP: it never progresses again); the sender sends 1 MiB and a second thread disconnects
// the peer 300 ms later.
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "transport/ucx_transport.h"

namespace mmx::transport {
namespace {

constexpr uint64_t kToken = 77;

bool WriteString(int fd, const std::string& s) {
  const uint32_t n = static_cast<uint32_t>(s.size());
  return write(fd, &n, 4) == 4 && write(fd, s.data(), n) == static_cast<ssize_t>(n);
}

bool ReadString(int fd, std::string* s) {
  uint32_t n = 0;
  if (read(fd, &n, 4) != 4) return false;
  s->resize(n);
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, s->data() + got, n - got);
    if (r <= 0) return false;
    got += static_cast<size_t>(r);
  }
  return true;
}

// The peer: publishes its address, learns the sender's, connects, then freezes.
[[noreturn]] void RunPeer(int fd) {
  auto t = UcxTransport::Create({2, kToken});
  if (!t.ok()) _exit(2);
  std::string sender;
  if (!WriteString(fd, (*t)->LocalAddress()) || !ReadString(fd, &sender)) _exit(3);
  if (!(*t)->Connect(1, sender).ok()) _exit(4);
  if (write(fd, "s", 1) != 1) _exit(5);
  raise(SIGSTOP);
  _exit(0);
}

// The sender exits 0 when Send returned an error within a few seconds of the disconnect.
[[noreturn]] void RunSender(int fd) {
  auto t = UcxTransport::Create({1, kToken});
  if (!t.ok()) _exit(10);
  std::string peer;
  if (!ReadString(fd, &peer) || !WriteString(fd, (*t)->LocalAddress())) _exit(11);
  if (!(*t)->Connect(2, peer).ok()) _exit(12);
  char c;
  if (read(fd, &c, 1) != 1) _exit(13);
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the peer is stopped by now
  std::vector<uint8_t> payload(1 << 20, 7);
  const auto t0 = std::chrono::steady_clock::now();
  std::thread disconnect([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    (*t)->Disconnect(2);
  });
  absl::Status st = (*t)->Send(2, 1, "h", payload.data(), payload.size());
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  disconnect.join();
  std::fprintf(stderr, "send to a stopped peer returned after %.2f s: %s\n", s, st.ToString().c_str());
  _exit(!st.ok() && s < 5.0 ? 0 : 14);
}

void RunCase(const char* tls) {
  int fds[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  auto set_env = [&] {
    if (tls != nullptr) {
      setenv("UCX_TLS", tls, 1);
      setenv("UCX_NET_DEVICES", "lo", 1);
    }
  };
  const pid_t peer = fork();
  if (peer == 0) {
    close(fds[0]);
    set_env();
    RunPeer(fds[1]);
  }
  const pid_t sender = fork();
  if (sender == 0) {
    close(fds[1]);
    set_env();
    RunSender(fds[0]);
  }
  close(fds[0]);
  close(fds[1]);
  int status = 0;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool hung = false;
  while (waitpid(sender, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) {
      kill(sender, SIGKILL);
      waitpid(sender, &status, 0);
      hung = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  kill(peer, SIGKILL);
  waitpid(peer, nullptr, 0);
  EXPECT_FALSE(hung) << "the sender hung on a send to a stopped peer";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(UcxDeadPeerTest, SendToAStoppedPeerReturnsOnceItIsDisconnectedShm) { RunCase(nullptr); }
TEST(UcxDeadPeerTest, SendToAStoppedPeerReturnsOnceItIsDisconnectedTcp) { RunCase("tcp"); }

}  // namespace
}  // namespace mmx::transport
