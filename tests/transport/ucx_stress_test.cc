// Stress of the UCX data plane between two processes: every message arrives, once, intact and in
// time, whatever the send and receive progress budgets, with several threads sending both ways
// at once, sizes from empty to past the rendezvous threshold, headers over UCX's AM header
// limit, and a receive side that falls behind.
//
// Before the fix in UcxWorker (ucx_worker.h: whoever drove progress drains and re-arms the
// worker before letting go) the ping-pong phase with a sending thread that progresses until its
// own send completes (send budget inf) and a receiver that sleeps at once (receive budget 0)
// lost a 1 MiB message (its reply sat half-read until the 10 s receive timeout below) in 6 of 6 runs of this test.
#include <atomic>
#include <cstdio>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/transport/ucx_peers.h"

namespace mmx::transport::testing {
namespace {

struct StressCase {
  const char* name;
  const char* tls;          // nullptr: mmx's default (shared memory class on one host)
  const char* net_devices;
  absl::Duration send_budget;
  absl::Duration receive_budget;
  int ping_pong_rounds = 300;
};

constexpr int kSenders = 3;
constexpr int kMessagesPerSender = 36;
constexpr size_t kSizes[] = {0, 8, 4000, 8192, 12288, 65536, 262144, 1 << 20, (2 << 20) + 3};
const absl::Duration kLiveness = absl::Seconds(10);  // a message later than this is lost

uint64_t FloodKey(int sender, int i) { return (uint64_t{1} << 40) | (uint64_t(sender) << 20) | uint64_t(i); }
size_t FloodSize(int sender, int i) { return kSizes[(i * 5 + sender) % std::size(kSizes)]; }
// Every fifth message carries a 20 KiB header: over the AM header limit, sent split.
std::string FloodHeader(uint64_t key, int i) {
  return i % 5 == 4 ? std::string(20 << 10, static_cast<char>('a' + key % 26)) : std::to_string(key);
}

// Peer 1 sends, peer 2 echoes, for `rounds` rounds (a lost wakeup showed about once in 200); mostly 1 MiB (rendezvous), every fourth round 8 bytes. Each
// payload carries its round number in its first bytes.
int PingPong(UcxTransport& t, PeerId self, PeerId other, int rounds) {
  const std::vector<uint8_t> large = Pattern(1 << 20, 1);
  for (int round = 0; round < rounds; ++round) {
    const uint64_t key = 1000 + round;
    std::vector<uint8_t> payload = round % 4 == 3 ? std::vector<uint8_t>(8) : large;
    std::memcpy(payload.data(), &key, sizeof(key));
    if (self == 1) {
      absl::Status sent = t.Send(other, key, "", payload.data(), payload.size());
      PEER_CHECK(sent.ok(), "ping %d: %s", round, sent.ToString().c_str());
    }
    absl::StatusOr<Message> m = t.Receive(other, key, kLiveness);
    PEER_CHECK(m.ok(), "round %d: %s", round, m.status().ToString().c_str());
    PEER_CHECK(m->payload == payload, "round %d: payload differs", round);
    if (self == 2) {
      absl::Status sent = t.Send(other, key, "", m->payload.data(), m->payload.size());
      PEER_CHECK(sent.ok(), "pong %d: %s", round, sent.ToString().c_str());
    }
  }
  return 0;
}

int SendFlood(UcxTransport& t, PeerId self, PeerId other, int sender) {
  for (int i = 0; i < kMessagesPerSender; ++i) {
    const uint64_t key = FloodKey(sender, i);
    const std::vector<uint8_t> payload = Pattern(FloodSize(sender, i), key);
    if (i % 4 == 0 && i + 1 < kMessagesPerSender) {  // a pair posted at once, as a MoE dispatch
      const uint64_t next_key = FloodKey(sender, i + 1);
      const std::vector<uint8_t> next = Pattern(FloodSize(sender, i + 1), next_key);
      absl::Status sent = t.SendAll({{other, key, FloodHeader(key, i), payload.data(), payload.size()},
                                     {other, next_key, FloodHeader(next_key, i + 1), next.data(), next.size()}});
      PEER_CHECK(sent.ok(), "SendAll %d/%d: %s", sender, i, sent.ToString().c_str());
      ++i;
      continue;
    }
    absl::Status sent = t.Send(other, key, FloodHeader(key, i), payload.data(), payload.size());
    PEER_CHECK(sent.ok(), "Send %d/%d: %s", sender, i, sent.ToString().c_str());
  }
  return 0;
}

// Takes the messages of `senders` in order, the last one's by ReceiveAny; sleeps now and then,
// so that messages queue up and senders wait on pulls.
int ReceiveFlood(UcxTransport& t, PeerId self, PeerId other, std::vector<int> senders) {
  for (int i = 0; i < kMessagesPerSender; ++i) {
    for (int sender : senders) {
      const uint64_t key = FloodKey(sender, i);
      absl::StatusOr<Message> m = sender == kSenders - 1 ? t.ReceiveAny(key, kLiveness)
                                                         : t.Receive(other, key, kLiveness);
      PEER_CHECK(m.ok(), "message %d/%d: %s", sender, i, m.status().ToString().c_str());
      PEER_CHECK(m->from == other && m->header == FloodHeader(key, i), "message %d/%d: header differs", sender, i);
      PEER_CHECK(m->payload == Pattern(FloodSize(sender, i), key), "message %d/%d: payload differs", sender, i);
    }
    if (i % 7 == 3) std::this_thread::sleep_for(std::chrono::milliseconds(3));
  }
  return 0;
}

int Flood(UcxTransport& t, PeerId self, PeerId other) {
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int s = 0; s < kSenders; ++s) {
    threads.emplace_back([&, s] { failures += SendFlood(t, self, other, s) != 0; });
  }
  threads.emplace_back([&] { failures += ReceiveFlood(t, self, other, {0, 1}) != 0; });
  threads.emplace_back([&] { failures += ReceiveFlood(t, self, other, {kSenders - 1}) != 0; });
  for (std::thread& thread : threads) thread.join();
  PEER_CHECK(failures.load() == 0, "%d flood threads failed", failures.load());
  return 0;
}

int StressPeer(int fd, PeerId self, PeerId other, const StressCase& c) {
  PeerEnv env;
  env.tls = c.tls;
  env.net_devices = c.net_devices;
  env.options.send_progress_budget = c.send_budget;
  env.options.receive_progress_budget = c.receive_budget;
  absl::StatusOr<std::unique_ptr<UcxTransport>> t = ConnectPeer(fd, self, other, env);
  PEER_CHECK(t.ok(), "connect: %s", t.status().ToString().c_str());
  if (int code = PingPong(**t, self, other, c.ping_pong_rounds); code != 0) return code;
  PEER_CHECK(Barrier(fd), "barrier after the ping-pong");
  if (int code = Flood(**t, self, other); code != 0) return code;
  PEER_CHECK((*t)->dropped_messages() == 0, "dropped %llu messages",
             static_cast<unsigned long long>((*t)->dropped_messages()));
  // Nobody closes an endpoint while the other side may still be pulling from it.
  PEER_CHECK(Barrier(fd), "barrier before exit");
  t->reset();
  return 0;
}

void PrintTo(const StressCase& c, std::ostream* os) { *os << c.name; }

class UcxStressTest : public ::testing::TestWithParam<StressCase> {};

TEST_P(UcxStressTest, EveryMessageArrivesOnceIntactAndInTime) {
  const StressCase c = GetParam();
  const auto [first, second] =
      RunPeers([&c](int fd, PeerId self, PeerId other) { return StressPeer(fd, self, other, c); },
               absl::Seconds(90));
  EXPECT_EQ(first, 0) << "peer 1 failed (its stderr says why)";
  EXPECT_EQ(second, 0) << "peer 2 failed (its stderr says why)";
}

const absl::Duration kInf = absl::InfiniteDuration();
const absl::Duration k50us = absl::Microseconds(50);
const absl::Duration k0 = absl::ZeroDuration();

INSTANTIATE_TEST_SUITE_P(
    Budgets, UcxStressTest,
    ::testing::Values(StressCase{"SharedMemorySendSpinsReceiveSleeps", nullptr, nullptr, kInf, k0, 2500},
                      StressCase{"SharedMemoryDefaults", nullptr, nullptr, k50us, k50us},
                      StressCase{"SharedMemoryAllOnTheProgressThread", nullptr, nullptr, k0, k0},
                      StressCase{"SharedMemoryBothSpin", nullptr, nullptr, kInf, kInf},
                      StressCase{"TcpSendSpinsReceiveSleeps", "tcp", "lo", kInf, k0, 1500},
                      StressCase{"TcpDefaults", "tcp", "lo", k50us, k50us}),
    [](const ::testing::TestParamInfo<StressCase>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace mmx::transport::testing
