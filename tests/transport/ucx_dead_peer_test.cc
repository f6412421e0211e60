// A send to a peer that stops answering must not hang its sender: once the control plane
// disconnects the peer, Send gives up with UNAVAILABLE, saying so. (A peer that is already dead
// when a send starts is reported by UCX itself; the dangerous case is a rendezvous whose peer
// stops mid-way, e.g. a hung machine.) Two forked processes: the peer connects and then stops
// itself (SIGSTOP: it never progresses again); once the parent has seen it stopped, the sender
// sends 1 MiB and a second thread disconnects the peer as soon as that send is waiting (or shuts
// the transport down: then Send ends CANCELLED).
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "transport/ucx_transport.h"

namespace mmx::transport {
namespace {

constexpr ClusterToken kToken{77, 2};

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

// The sender exits 0 when Send, blocked on the stopped peer, returned UNAVAILABLE saying the peer
// was disconnected during the send (CANCELLED saying it shut down, `by_shutdown`). `go` says when
// the parent saw the peer stopped.
[[noreturn]] void RunSender(int fd, int go, bool by_shutdown) {
  auto t = UcxTransport::Create({1, kToken});
  if (!t.ok()) _exit(10);
  std::string peer;
  if (!ReadString(fd, &peer) || !WriteString(fd, (*t)->LocalAddress())) _exit(11);
  if (!(*t)->Connect(2, peer).ok()) _exit(12);
  char c;
  if (read(go, &c, 1) != 1) _exit(13);  // the peer is stopped
  std::vector<uint8_t> payload(1 << 20, 7);
  std::thread disconnect([&] {
    // The send is waiting for the stopped peer: pull the peer from under it. (A poll of the
    // transport's gauge: the event itself is inside UCX.)
    while ((*t)->sends_waiting() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    if (by_shutdown) {
      (*t)->Shutdown();
    } else {
      (*t)->Disconnect(2);
    }
  });
  absl::Status st = (*t)->Send(2, 1, "h", payload.data(), payload.size());
  disconnect.join();
  std::fprintf(stderr, "send to a stopped peer returned: %s\n", st.ToString().c_str());
  const bool expected =
      by_shutdown ? absl::IsCancelled(st) && st.message().find("shut down during a send") != absl::string_view::npos
                  : absl::IsUnavailable(st) && st.message().find("disconnected during a send") != absl::string_view::npos;
  _exit(expected ? 0 : 14);
}

void RunCase(const char* tls, bool by_shutdown = false) {
  int fds[2], go[2];
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  ASSERT_EQ(pipe(go), 0);
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
    close(go[1]);
    set_env();
    RunSender(fds[0], go[0], by_shutdown);
  }
  close(fds[0]);
  close(fds[1]);
  close(go[0]);
  // Tell the sender once the peer has stopped itself (or died trying).
  int peer_status = 0;
  ASSERT_EQ(waitpid(peer, &peer_status, WUNTRACED), peer);
  EXPECT_TRUE(WIFSTOPPED(peer_status)) << "the peer exited with " << WEXITSTATUS(peer_status);
  ASSERT_EQ(write(go[1], "g", 1), 1);
  close(go[1]);
  // The sender's exit wakes the wait; 20 s means it hung.
  int status = 0;
  absl::Notification exited;
  std::thread reaper([&] {
    waitpid(sender, &status, 0);
    exited.Notify();
  });
  const bool hung = !exited.WaitForNotificationWithTimeout(absl::Seconds(20));
  if (hung) kill(sender, SIGKILL);
  reaper.join();
  kill(peer, SIGKILL);
  waitpid(peer, nullptr, 0);
  EXPECT_FALSE(hung) << "the sender hung on a send to a stopped peer";
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << (by_shutdown ? "Send did not end CANCELLED saying the transport shut down"
                                                     : "Send did not end UNAVAILABLE saying the peer was disconnected");
}

TEST(UcxDeadPeerTest, SendToAStoppedPeerReturnsOnceItIsDisconnectedShm) { RunCase(nullptr); }
TEST(UcxDeadPeerTest, SendToAStoppedPeerReturnsOnceItIsDisconnectedTcp) { RunCase("tcp"); }
TEST(UcxDeadPeerTest, SendToAStoppedPeerReturnsOnceTheTransportShutsDown) { RunCase(nullptr, /*by_shutdown=*/true); }

}  // namespace
}  // namespace mmx::transport
