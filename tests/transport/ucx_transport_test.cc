// Two UcxTransports in one process (UCX picks shared memory or self between them). The
// two-process tests live in ucx_pair_test.cc, since fork() must come before any UCX init.
#include "transport/ucx_transport.h"

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "transport/envelope.h"
#include "transport/ucs_status.h"

namespace mmx::transport {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

constexpr ClusterToken kToken{0xC1A55E7, 2};

std::vector<uint8_t> Pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> bytes(n);
  uint32_t x = seed * 2654435761u + 1;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    bytes[i] = static_cast<uint8_t>(x >> 24);
  }
  return bytes;
}

std::unique_ptr<UcxTransport> MakeTransport(
    PeerId self, ClusterToken token, absl::Duration progress_budget = absl::Microseconds(50)) {
  UcxTransportOptions ucx_options;
  ucx_options.send_progress_budget = progress_budget;
  absl::StatusOr<std::unique_ptr<UcxTransport>> t =
      UcxTransport::Create(TransportOptions{self, token}, ucx_options);
  EXPECT_THAT(t, IsOk());
  return t.ok() ? std::move(*t) : nullptr;
}

// The receiver's progress thread handles a message some time after Send returns (eager sends
// complete locally). Waits for the drop counter without assuming how long that takes.
bool AwaitDrops(const UcxTransport& receiver, uint64_t n) {
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (receiver.dropped_messages() < n) {
    if (absl::Now() > give_up) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return true;
}

// Parameter: UcxTransportOptions::send_progress_budget (sleep at once, the default, never sleep).
class UcxTransportTest : public ::testing::TestWithParam<absl::Duration> {
 protected:
  void SetUp() override {
    a_ = MakeTransport(1, kToken, GetParam());
    b_ = MakeTransport(2, kToken, GetParam());
    ASSERT_NE(a_, nullptr);
    ASSERT_NE(b_, nullptr);
    ASSERT_THAT(a_->Connect(2, b_->LocalAddress()), IsOk());
    ASSERT_THAT(b_->Connect(1, a_->LocalAddress()), IsOk());
  }

  std::unique_ptr<UcxTransport> a_;
  std::unique_ptr<UcxTransport> b_;
};

// 0 B, 100 B, 12 KiB (above the shm eager limit: rendezvous) and 1 MiB, both directions.
TEST_P(UcxTransportTest, ExchangesMessagesOfEverySizeBothWays) {
  const size_t sizes[] = {0, 100, 12 << 10, 1 << 20};
  uint64_t key = 1000;
  for (size_t size : sizes) {
    for (int direction = 0; direction < 2; ++direction) {
      UcxTransport* from = direction == 0 ? a_.get() : b_.get();
      UcxTransport* to = direction == 0 ? b_.get() : a_.get();
      const PeerId from_id = direction == 0 ? 1 : 2;
      const PeerId to_id = direction == 0 ? 2 : 1;
      const std::vector<uint8_t> payload = Pattern(size, static_cast<uint32_t>(key));
      const std::string header = "hdr-" + std::to_string(key);
      ASSERT_THAT(from->Send(to_id, key, header, payload.data(), payload.size()), IsOk())
          << size << " bytes";
      absl::StatusOr<Message> m = to->Receive(from_id, key, absl::Seconds(10));
      ASSERT_THAT(m, IsOk()) << size << " bytes";
      EXPECT_EQ(m->from, from_id);
      EXPECT_EQ(m->header, header);
      EXPECT_TRUE(m->payload == payload) << size << " bytes: payload differs";
      ++key;
    }
  }
  EXPECT_EQ(a_->dropped_messages(), 0u);
  EXPECT_EQ(b_->dropped_messages(), 0u);
}

TEST_P(UcxTransportTest, MatchesByKeyNotArrivalOrder) {
  const std::vector<uint8_t> big = Pattern(64 << 10, 1), small = Pattern(10, 2);
  ASSERT_THAT(a_->Send(2, 2, "big", big.data(), big.size()), IsOk());
  ASSERT_THAT(a_->Send(2, 1, "small", small.data(), small.size()), IsOk());
  absl::StatusOr<Message> m1 = b_->Receive(1, 1, absl::Seconds(10));
  absl::StatusOr<Message> m2 = b_->Receive(1, 2, absl::Seconds(10));
  ASSERT_THAT(m1, IsOk());
  ASSERT_THAT(m2, IsOk());
  EXPECT_EQ(m1->header, "small");
  EXPECT_TRUE(m2->payload == big);
}

TEST_P(UcxTransportTest, ConcurrentSendersInterleave) {
  constexpr int kThreads = 3, kPerThread = 30;
  std::vector<std::thread> senders;
  for (int t = 0; t < kThreads; ++t) {
    senders.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const uint64_t key = t * 1000 + i;
        const std::vector<uint8_t> payload = Pattern(i % 2 ? 20000 : 300, key);
        EXPECT_THAT(a_->Send(2, key, "", payload.data(), payload.size()), IsOk());
      }
    });
  }
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kPerThread; ++i) {
      const uint64_t key = t * 1000 + i;
      absl::StatusOr<Message> m = b_->Receive(1, key, absl::Seconds(20));
      ASSERT_THAT(m, IsOk());
      EXPECT_TRUE(m->payload == Pattern(i % 2 ? 20000 : 300, key));
    }
  }
  for (std::thread& s : senders) s.join();
}

// Post/Wait keep a window of sends in flight from one thread; small ones complete in place
// (eager, no request), large ones when the peer has pulled them: Wait takes both.
TEST_P(UcxTransportTest, PostedSendsOfEverySizeSlideThroughAWindow) {
  constexpr int kMessages = 24, kWindow = 4;
  const size_t sizes[] = {0, 100, 12 << 10, 1 << 20};
  std::vector<std::vector<uint8_t>> payloads;
  for (int i = 0; i < kMessages; ++i) payloads.push_back(Pattern(sizes[i % 4], i));
  std::thread receiver([&] {
    for (int i = 0; i < kMessages; ++i) {
      absl::StatusOr<Message> m = b_->Receive(1, 500 + i, absl::Seconds(20));
      ASSERT_THAT(m, IsOk()) << i;
      EXPECT_TRUE(m->payload == payloads[i]) << i;
    }
  });
  std::deque<UcxTransport::PostedSend> in_flight;
  for (int next = 0; next < kMessages || !in_flight.empty();) {
    while (next < kMessages && static_cast<int>(in_flight.size()) < kWindow) {
      absl::StatusOr<UcxTransport::PostedSend> posted =
          a_->Post(2, 500 + next, "", payloads[next].data(), payloads[next].size());
      ASSERT_THAT(posted, IsOk()) << next;
      in_flight.push_back(*posted);
      ++next;
    }
    EXPECT_THAT(a_->Wait(in_flight.front()), IsOk());
    in_flight.pop_front();
  }
  receiver.join();
  EXPECT_EQ(a_->sends_waiting(), 0);
}

INSTANTIATE_TEST_SUITE_P(SendProgressBudget, UcxTransportTest,
                         ::testing::Values(absl::ZeroDuration(), absl::Microseconds(50),
                                           absl::InfiniteDuration()),
                         [](const auto& info) -> std::string {
                           if (info.param == absl::ZeroDuration()) return "SleepAtOnce";
                           if (info.param == absl::InfiniteDuration()) return "NeverSleep";
                           return "ProgressFirst";
                         });

TEST(UcxTransportTrustTest, GarbageOrTruncatedAddressesAreRefusedBeforeUcxParsesThem) {
  std::unique_ptr<UcxTransport> a = MakeTransport(1, kToken);
  std::unique_ptr<UcxTransport> b = MakeTransport(2, kToken);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  const std::string good = b->LocalAddress();
  std::string flipped = good;
  flipped[good.size() / 2] ^= 0x10;
  for (const std::string& bad : {std::string(), std::string("\x00garbage\xff", 9), good.substr(0, good.size() - 1),
                                 flipped, good.substr(12)}) {
    EXPECT_THAT(a->Connect(2, bad), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("is not a data-plane address")));
  }
  EXPECT_THAT(a->Connect(2, good), IsOk());
}

TEST(UcxTransportTrustTest, DropsForgedMessageWithWrongToken) {
  std::unique_ptr<UcxTransport> receiver = MakeTransport(2, kToken);
  std::unique_ptr<UcxTransport> forger = MakeTransport(1, ClusterToken{kToken.low, kToken.high ^ 0xFF});  // claims peer 1
  std::unique_ptr<UcxTransport> honest = MakeTransport(1, kToken);
  ASSERT_NE(receiver, nullptr);
  ASSERT_NE(forger, nullptr);
  ASSERT_NE(honest, nullptr);
  ASSERT_THAT(receiver->Connect(1, honest->LocalAddress()), IsOk());
  ASSERT_THAT(forger->Connect(2, receiver->LocalAddress()), IsOk());
  const uint8_t payload[3] = {1, 2, 3};
  ASSERT_THAT(forger->Send(2, 5, "forged", payload, 3), IsOk());
  ASSERT_TRUE(AwaitDrops(*receiver, 1));
  EXPECT_EQ(receiver->dropped_messages(), 1u);
  EXPECT_THAT(receiver->Receive(1, 5, absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(receiver->last_drop(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong cluster token")));
}

TEST(UcxTransportTrustTest, DropsForgedRendezvousWithoutPullingIt) {
  std::unique_ptr<UcxTransport> receiver = MakeTransport(2, kToken);
  std::unique_ptr<UcxTransport> forger = MakeTransport(1, ClusterToken{kToken.low + 1, kToken.high});
  ASSERT_NE(receiver, nullptr);
  ASSERT_NE(forger, nullptr);
  ASSERT_THAT(receiver->Connect(1, forger->LocalAddress()), IsOk());
  ASSERT_THAT(forger->Connect(2, receiver->LocalAddress()), IsOk());
  const std::vector<uint8_t> big = Pattern(1 << 20, 3);
  // Completes: the receiver drops the rendezvous descriptor, which releases the sender.
  ASSERT_THAT(forger->Send(2, 5, "forged", big.data(), big.size()), IsOk());
  ASSERT_TRUE(AwaitDrops(*receiver, 1));
  EXPECT_THAT(receiver->Receive(1, 5, absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(receiver->dropped_messages(), 1u);
}

TEST(UcxTransportTrustTest, DropsMessageFromNonPeer) {
  std::unique_ptr<UcxTransport> receiver = MakeTransport(2, kToken);
  std::unique_ptr<UcxTransport> stranger = MakeTransport(7, kToken);
  ASSERT_NE(receiver, nullptr);
  ASSERT_NE(stranger, nullptr);
  ASSERT_THAT(stranger->Connect(2, receiver->LocalAddress()), IsOk());
  ASSERT_THAT(stranger->Send(2, 5, "", nullptr, 0), IsOk());
  ASSERT_TRUE(AwaitDrops(*receiver, 1));
  EXPECT_THAT(receiver->ReceiveAny(5, absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(receiver->dropped_messages(), 1u);
  EXPECT_THAT(receiver->last_drop(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("from peer 7")));
}

TEST(UcxTransportTest2, SendToUnknownPeerIsUnavailable) {
  std::unique_ptr<UcxTransport> a = MakeTransport(1, kToken);
  ASSERT_NE(a, nullptr);
  EXPECT_THAT(a->Send(9, 1, "", nullptr, 0),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("peer 9 is not connected")));
  EXPECT_THAT(a->Connect(9, ""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(a->DescribeEndpoint(9), StatusIs(absl::StatusCode::kNotFound));
}

TEST(UcxTransportTest2, SendAllReachesEveryPeerAndReportsTheFirstError) {
  // One sender, two receivers (a dispatch to two expert hosts), rendezvous-sized payloads, and a
  // message to an unknown peer among them: the others still arrive, the error is returned.
  std::unique_ptr<UcxTransport> a = MakeTransport(1, kToken, absl::ZeroDuration());
  std::unique_ptr<UcxTransport> b = MakeTransport(2, kToken);
  std::unique_ptr<UcxTransport> c = MakeTransport(3, kToken);
  ASSERT_TRUE(a && b && c);
  ASSERT_THAT(a->Connect(2, b->LocalAddress()), IsOk());
  ASSERT_THAT(a->Connect(3, c->LocalAddress()), IsOk());
  ASSERT_THAT(b->Connect(1, a->LocalAddress()), IsOk());
  ASSERT_THAT(c->Connect(1, a->LocalAddress()), IsOk());
  const std::vector<uint8_t> to_b = Pattern(256 << 10, 5), to_c = Pattern(100 << 10, 6);
  std::vector<Transport::Outgoing> sends = {{2, 7, "for-b", to_b.data(), to_b.size()},
                                            {9, 7, "nobody", nullptr, 0},
                                            {3, 7, "for-c", to_c.data(), to_c.size()}};
  EXPECT_THAT(a->SendAll(sends), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("peer 9")));
  absl::StatusOr<Message> mb = b->Receive(1, 7, absl::Seconds(10));
  absl::StatusOr<Message> mc = c->Receive(1, 7, absl::Seconds(10));
  ASSERT_THAT(mb, IsOk());
  ASSERT_THAT(mc, IsOk());
  EXPECT_EQ(mb->header, "for-b");
  EXPECT_TRUE(mb->payload == to_b);
  EXPECT_EQ(mc->header, "for-c");
  EXPECT_TRUE(mc->payload == to_c);
  sends.erase(sends.begin() + 1);
  EXPECT_THAT(a->SendAll(sends), IsOk());
  EXPECT_THAT(b->Receive(1, 7, absl::Seconds(10)), IsOk());
  EXPECT_THAT(c->Receive(1, 7, absl::Seconds(10)), IsOk());
}

TEST(UcxTransportTest2, DisconnectFailsReceiverAndShutdownCancels) {
  std::unique_ptr<UcxTransport> a = MakeTransport(1, kToken);
  std::unique_ptr<UcxTransport> b = MakeTransport(2, kToken);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_THAT(a->Connect(2, b->LocalAddress()), IsOk());
  absl::StatusOr<Message> got;
  std::thread receiver([&] { got = a->Receive(2, 1, absl::Seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  a->Disconnect(2);
  receiver.join();
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(a->Send(2, 1, "", nullptr, 0), StatusIs(absl::StatusCode::kUnavailable));
  std::thread any([&] { got = a->ReceiveAny(1, absl::InfiniteDuration()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  a->Shutdown();
  any.join();
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kCancelled));
}

// Headers too large for UCX's AM header travel in front of the payload (kUcxAmIdSplit), eager
// and rendezvous alike; the caller sees no difference up to the envelope's 64 KiB.
TEST_P(UcxTransportTest, HeadersUpToTheEnvelopeLimitArrive) {
  const size_t inline_limit = a_->max_inline_header_bytes();
  ASSERT_GT(inline_limit, 1000u);  // a row table of a few hundred entries fits inline
  uint64_t key = 1;
  for (size_t header_bytes : {inline_limit, inline_limit + 1, kMaxHeaderBytes}) {
    for (size_t payload_bytes : {size_t{0}, size_t{100}, size_t{1} << 20}) {
      std::string header(header_bytes, '\0');
      for (size_t i = 0; i < header_bytes; ++i) header[i] = static_cast<char>('a' + i % 26);
      const std::vector<uint8_t> payload = Pattern(payload_bytes, static_cast<uint32_t>(key));
      ASSERT_THAT(a_->Send(2, key, header, payload.data(), payload.size()), IsOk());
      absl::StatusOr<Message> m = b_->Receive(1, key, absl::Seconds(10));
      ASSERT_THAT(m, IsOk()) << header_bytes << " + " << payload_bytes;
      EXPECT_TRUE(m->header == header) << header_bytes << " + " << payload_bytes;
      EXPECT_TRUE(m->payload == payload) << header_bytes << " + " << payload_bytes;
      ++key;
    }
  }
  EXPECT_THAT(a_->Send(2, key, std::string(kMaxHeaderBytes + 1, 'h'), nullptr, 0),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header")));
  EXPECT_EQ(b_->dropped_messages(), 0u);
}

TEST(UcxTransportTrustTest, DropsSplitMessagesWithWrongToken) {
  std::unique_ptr<UcxTransport> receiver = MakeTransport(2, kToken);
  std::unique_ptr<UcxTransport> forger = MakeTransport(1, ClusterToken{kToken.low - 1, kToken.high});
  ASSERT_NE(receiver, nullptr);
  ASSERT_NE(forger, nullptr);
  ASSERT_THAT(receiver->Connect(1, forger->LocalAddress()), IsOk());
  ASSERT_THAT(forger->Connect(2, receiver->LocalAddress()), IsOk());
  const std::string header(kMaxHeaderBytes, 'h');
  const std::vector<uint8_t> big = Pattern(1 << 20, 4);
  ASSERT_THAT(forger->Send(2, 5, header, nullptr, 0), IsOk());
  ASSERT_THAT(forger->Send(2, 6, header, big.data(), big.size()), IsOk());
  ASSERT_TRUE(AwaitDrops(*receiver, 2));
  EXPECT_THAT(receiver->last_drop(), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(receiver->ReceiveAny(5, absl::Milliseconds(50)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_EQ(receiver->dropped_messages(), 2u);
}

TEST(UcxTransportTest2, ReconnectAfterDisconnectCarriesMessagesAgain) {
  std::unique_ptr<UcxTransport> a = MakeTransport(1, kToken);
  std::unique_ptr<UcxTransport> b = MakeTransport(2, kToken);
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  ASSERT_THAT(a->Connect(2, b->LocalAddress()), IsOk());
  ASSERT_THAT(a->Connect(2, b->LocalAddress()), IsOk());  // replaces the endpoint
  ASSERT_THAT(b->Connect(1, a->LocalAddress()), IsOk());
  const std::vector<uint8_t> payload = Pattern(50000, 9);
  ASSERT_THAT(a->Send(2, 1, "x", payload.data(), payload.size()), IsOk());
  ASSERT_THAT(b->Receive(1, 1, absl::Seconds(10)), IsOk());

  b->Disconnect(1);
  ASSERT_THAT(a->Send(2, 2, "while disconnected", nullptr, 0), IsOk());
  ASSERT_TRUE(AwaitDrops(*b, 1));
  ASSERT_THAT(b->Connect(1, a->LocalAddress()), IsOk());
  ASSERT_THAT(a->Send(2, 3, "back", payload.data(), payload.size()), IsOk());
  absl::StatusOr<Message> m = b->Receive(1, 3, absl::Seconds(10));
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->header, "back");
  EXPECT_TRUE(m->payload == payload);
  EXPECT_THAT(b->Receive(1, 2, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(UcxTransportTest2, IdleProgressThreadSleeps) {
  std::unique_ptr<UcxTransport> a = MakeTransport(1, kToken);
  ASSERT_NE(a, nullptr);
  const uint64_t before = a->progress_wakeups();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  // A spinning thread would wake thousands of times; an idle one a handful at most (UCX's
  // own timers may poke the fd now and then).
  EXPECT_LT(a->progress_wakeups() - before, 50u);
}

// A receiver that drives progress itself takes its message where it waits: the progress
// thread, whose epoll set leaves the worker out meanwhile, is not woken for it (on a VM that
// wakeup costs more than the message; issue 17). Ping-pong between two threads, one transport
// each; a message sent before its receiver starts driving may still wake a progress thread.
TEST(UcxTransportTest2, DrivingReceiversDoNotWakeTheProgressThread) {
  UcxTransportOptions options;
  options.receive_progress_budget = absl::Seconds(1);
  absl::StatusOr<std::unique_ptr<UcxTransport>> a = UcxTransport::Create(TransportOptions{1, kToken}, options);
  absl::StatusOr<std::unique_ptr<UcxTransport>> b = UcxTransport::Create(TransportOptions{2, kToken}, options);
  ASSERT_THAT(a, IsOk());
  ASSERT_THAT(b, IsOk());
  ASSERT_THAT((*a)->Connect(2, (*b)->LocalAddress()), IsOk());
  ASSERT_THAT((*b)->Connect(1, (*a)->LocalAddress()), IsOk());
  constexpr int kRounds = 400;
  const uint64_t before = (*a)->progress_wakeups() + (*b)->progress_wakeups();
  std::thread echo([&] {
    for (int i = 0; i < kRounds; ++i) {
      absl::StatusOr<Message> m = (*b)->Receive(1, i, absl::Seconds(10));
      ASSERT_THAT(m, IsOk());
      ASSERT_THAT((*b)->Send(1, i, "", m->payload.data(), m->payload.size()), IsOk());
    }
  });
  const std::vector<uint8_t> payload = Pattern(100, 7);
  for (int i = 0; i < kRounds; ++i) {
    ASSERT_THAT((*a)->Send(2, i, "", payload.data(), payload.size()), IsOk());
    ASSERT_THAT((*a)->Receive(2, i, absl::Seconds(10)), IsOk());
  }
  echo.join();
  const uint64_t wakeups = (*a)->progress_wakeups() + (*b)->progress_wakeups() - before;
  std::printf("progress thread wakeups for %d messages: %llu\n", 2 * kRounds,
              static_cast<unsigned long long>(wakeups));
  EXPECT_LT(wakeups, kRounds / 2u);  // one per message (2 * kRounds) when receivers only sleep
}

TEST(UcsStatusTest, MapsCodesWithContext) {
  EXPECT_THAT(UcsStatus(UCS_OK, "x"), IsOk());
  EXPECT_THAT(UcsStatus(UCS_ERR_UNREACHABLE, "ucp_ep_create"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("ucp_ep_create: ")));
  EXPECT_THAT(UcsStatus(UCS_ERR_ENDPOINT_TIMEOUT, "send"),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_THAT(UcsStatus(UCS_ERR_CANCELED, "send"), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(UcsStatus(UCS_ERR_NO_MEMORY, "alloc"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("(UCS -4)")));
  EXPECT_THAT(UcsStatus(UCS_ERR_MESSAGE_TRUNCATED, "recv"),
              StatusIs(absl::StatusCode::kDataLoss));
}

}  // namespace
}  // namespace mmx::transport
