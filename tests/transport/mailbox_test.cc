#include "transport/mailbox.h"

#include <atomic>
#include <cstdint>
#include <stop_token>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::transport {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

Message Make(PeerId from, uint64_t key, std::string header = "") {
  Message message;
  message.from = from;
  message.key = key;
  message.header = std::move(header);
  message.payload = {static_cast<uint8_t>(from), static_cast<uint8_t>(key)};
  return message;
}

// Waits until `mailbox` has `n` blocked receivers, so a test knows its thread is waiting.
void AwaitWaiters(const Mailbox& mailbox, size_t n) {
  while (mailbox.num_waiting() < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

TEST(MailboxTest, MatchesBySenderAndKeyRegardlessOfArrivalOrder) {
  Mailbox mailbox;
  mailbox.Connect(1);
  mailbox.Connect(2);
  ASSERT_TRUE(mailbox.Deliver(Make(2, 20, "b")));
  ASSERT_TRUE(mailbox.Deliver(Make(1, 20, "a")));
  ASSERT_TRUE(mailbox.Deliver(Make(1, 10, "c")));
  absl::StatusOr<Message> m = mailbox.Receive(1, 10, absl::ZeroDuration());
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->header, "c");
  m = mailbox.Receive(1, 20, absl::ZeroDuration());
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->header, "a");
  m = mailbox.Receive(2, 20, absl::ZeroDuration());
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->header, "b");
  EXPECT_EQ(mailbox.num_queued(), 0u);
}

TEST(MailboxTest, SameSenderAndKeyComeInArrivalOrder) {
  Mailbox mailbox;
  mailbox.Connect(1);
  for (const char* h : {"first", "second", "third"}) ASSERT_TRUE(mailbox.Deliver(Make(1, 5, h)));
  for (const char* h : {"first", "second", "third"}) {
    absl::StatusOr<Message> m = mailbox.Receive(1, 5, absl::ZeroDuration());
    ASSERT_THAT(m, IsOk());
    EXPECT_EQ(m->header, h);
  }
}

TEST(MailboxTest, ReceiveAnyTakesTheEarliestWithItsKey) {
  Mailbox mailbox;
  mailbox.Connect(1);
  mailbox.Connect(2);
  ASSERT_TRUE(mailbox.Deliver(Make(2, 9, "x")));
  ASSERT_TRUE(mailbox.Deliver(Make(1, 8, "other key")));
  ASSERT_TRUE(mailbox.Deliver(Make(1, 9, "y")));
  absl::StatusOr<Message> m = mailbox.ReceiveAny(9, absl::ZeroDuration());
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->from, 2u);
  m = mailbox.ReceiveAny(9, absl::ZeroDuration());
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->from, 1u);
  EXPECT_THAT(mailbox.ReceiveAny(9, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("key 9 from any peer")));
}

TEST(MailboxTest, WaiterGetsALaterDelivery) {
  Mailbox mailbox;
  mailbox.Connect(3);
  absl::StatusOr<Message> got;
  std::thread receiver([&] { got = mailbox.Receive(3, 42, absl::Seconds(30)); });
  AwaitWaiters(mailbox, 1);
  ASSERT_TRUE(mailbox.Deliver(Make(3, 41)));  // another key: stays queued
  ASSERT_TRUE(mailbox.Deliver(Make(3, 42, "mine")));
  receiver.join();
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->header, "mine");
  EXPECT_EQ(mailbox.num_queued(), 1u);
}

TEST(MailboxTest, DeliveryGoesToTheLongestWaitingMatch) {
  Mailbox mailbox;
  mailbox.Connect(1);
  absl::StatusOr<Message> any;
  absl::StatusOr<Message> specific;
  std::thread first([&] { any = mailbox.ReceiveAny(7, absl::Seconds(30)); });
  AwaitWaiters(mailbox, 1);
  std::thread second([&] { specific = mailbox.Receive(1, 7, absl::Seconds(30)); });
  AwaitWaiters(mailbox, 2);
  ASSERT_TRUE(mailbox.Deliver(Make(1, 7, "one")));
  ASSERT_TRUE(mailbox.Deliver(Make(1, 7, "two")));
  first.join();
  second.join();
  ASSERT_THAT(any, IsOk());
  ASSERT_THAT(specific, IsOk());
  EXPECT_EQ(any->header, "one");
  EXPECT_EQ(specific->header, "two");
}

TEST(MailboxTest, TimesOutWithDeadlineExceeded) {
  Mailbox mailbox;
  mailbox.Connect(1);
  EXPECT_THAT(mailbox.Receive(1, 77, absl::Milliseconds(20)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("key 77 from peer 1")));
  EXPECT_EQ(mailbox.num_waiting(), 0u);
  // A message arriving after the timeout is kept for the next receiver.
  ASSERT_TRUE(mailbox.Deliver(Make(1, 77)));
  EXPECT_THAT(mailbox.Receive(1, 77, absl::ZeroDuration()), IsOk());
}

TEST(MailboxTest, ReceiveFromUnknownPeerIsUnavailable) {
  Mailbox mailbox;
  EXPECT_THAT(mailbox.Receive(4, 1, absl::Seconds(30)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("peer 4 is not connected")));
}

TEST(MailboxTest, DeliveryFromUnknownPeerIsRefused) {
  Mailbox mailbox;
  mailbox.Connect(1);
  EXPECT_FALSE(mailbox.Deliver(Make(2, 1)));
  EXPECT_EQ(mailbox.num_queued(), 0u);
}

TEST(MailboxTest, DisconnectFailsWaitersOnThatPeerOnly) {
  Mailbox mailbox;
  mailbox.Connect(1);
  mailbox.Connect(2);
  absl::StatusOr<Message> on_one, on_two, on_any;
  std::thread a([&] { on_one = mailbox.Receive(1, 5, absl::Seconds(30)); });
  std::thread b([&] { on_two = mailbox.Receive(2, 5, absl::Seconds(30)); });
  std::thread c([&] { on_any = mailbox.ReceiveAny(5, absl::Seconds(30)); });
  AwaitWaiters(mailbox, 3);
  mailbox.Disconnect(1);
  a.join();
  EXPECT_THAT(on_one, StatusIs(absl::StatusCode::kUnavailable,
                               HasSubstr("peer 1 disconnected while waiting for key 5")));
  EXPECT_EQ(mailbox.num_waiting(), 2u);
  ASSERT_TRUE(mailbox.Deliver(Make(2, 5, "p")));
  ASSERT_TRUE(mailbox.Deliver(Make(2, 5, "q")));
  b.join();
  c.join();
  EXPECT_THAT(on_two, IsOk());
  EXPECT_THAT(on_any, IsOk());
  EXPECT_THAT(mailbox.Receive(1, 5, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kUnavailable));
}

TEST(MailboxTest, DisconnectDiscardsQueuedMessagesAndReconnectStartsFresh) {
  Mailbox mailbox;
  mailbox.Connect(1);
  ASSERT_TRUE(mailbox.Deliver(Make(1, 5)));
  mailbox.Disconnect(1);
  EXPECT_EQ(mailbox.num_queued(), 0u);
  EXPECT_FALSE(mailbox.Deliver(Make(1, 5)));
  mailbox.Connect(1);
  EXPECT_THAT(mailbox.Receive(1, 5, absl::ZeroDuration()),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST(MailboxTest, ShutdownCancelsWaitersAndLaterCalls) {
  Mailbox mailbox;
  mailbox.Connect(1);
  absl::StatusOr<Message> specific, any;
  std::thread a([&] { specific = mailbox.Receive(1, 5, absl::InfiniteDuration()); });
  std::thread b([&] { any = mailbox.ReceiveAny(6, absl::InfiniteDuration()); });
  AwaitWaiters(mailbox, 2);
  mailbox.Shutdown();
  a.join();
  b.join();
  EXPECT_THAT(specific, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(any, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_FALSE(mailbox.Deliver(Make(1, 5)));
  EXPECT_THAT(mailbox.Receive(1, 5, absl::Seconds(1)), StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(mailbox.ReceiveAny(5, absl::Seconds(1)), StatusIs(absl::StatusCode::kCancelled));
}

// Producers (one per peer) race consumers that name (peer, key) and consumers that use
// ReceiveAny on a separate key range; every message must arrive exactly once, intact.
TEST(MailboxTest, ConcurrentProducersAndConsumersLoseNothing) {
  constexpr int kPeers = 4;
  constexpr int kPerPeer = 400;  // keys [0, kPerPeer) are named, [kPerPeer, 2*kPerPeer) any
  Mailbox mailbox;
  for (PeerId p = 1; p <= kPeers; ++p) mailbox.Connect(p);

  std::vector<std::thread> threads;
  std::atomic<int> received{0};
  std::atomic<int> corrupt{0};
  for (PeerId p = 1; p <= kPeers; ++p) {
    threads.emplace_back([&, p] {  // consumer of peer p's named keys, in reverse order
      for (int k = kPerPeer - 1; k >= 0; --k) {
        absl::StatusOr<Message> m = mailbox.Receive(p, k, absl::Seconds(60));
        if (!m.ok() || m->from != p || m->key != static_cast<uint64_t>(k)) {
          ++corrupt;
        } else {
          ++received;
        }
      }
    });
  }
  std::vector<std::vector<int>> any_counts(kPerPeer, std::vector<int>(kPeers + 1, 0));
  absl::Mutex counts_mu;
  for (int c = 0; c < 2; ++c) {
    threads.emplace_back([&, c] {  // consumers of the "any" keys: each takes every other key
      for (int k = kPerPeer + c; k < 2 * kPerPeer; k += 2) {
        for (int n = 0; n < kPeers; ++n) {
          absl::StatusOr<Message> m = mailbox.ReceiveAny(k, absl::Seconds(60));
          if (!m.ok() || m->key != static_cast<uint64_t>(k)) {
            ++corrupt;
            continue;
          }
          absl::MutexLock lock(&counts_mu);
          ++any_counts[k - kPerPeer][m->from];
          ++received;
        }
      }
    });
  }
  for (PeerId p = 1; p <= kPeers; ++p) {
    threads.emplace_back([&, p] {
      for (int k = 0; k < 2 * kPerPeer; ++k) {
        if (!mailbox.Deliver(Make(p, k))) ++corrupt;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(corrupt.load(), 0);
  EXPECT_EQ(received.load(), 2 * kPeers * kPerPeer);
  for (const std::vector<int>& per_peer : any_counts) {
    for (PeerId p = 1; p <= kPeers; ++p) EXPECT_EQ(per_peer[p], 1);
  }
  EXPECT_EQ(mailbox.num_queued(), 0u);
  EXPECT_EQ(mailbox.num_waiting(), 0u);
}

TEST(MailboxTest, StopTokenWakesABlockedReceiverAtOnceAndLosesNoMessage) {
  Mailbox mailbox;
  mailbox.Connect(1);
  std::stop_source stop;
  absl::StatusOr<Message> got;
  std::thread receiver([&] { got = mailbox.Receive(1, 7, absl::InfiniteDuration(), stop.get_token()); });
  AwaitWaiters(mailbox, 1);
  stop.request_stop();
  receiver.join();  // would hang without the wake-up: the timeout is infinite
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kCancelled, HasSubstr("stopped")));
  EXPECT_EQ(mailbox.num_waiting(), 0u);
  // The stopped receiver is gone: the next message waits for the next receiver.
  ASSERT_TRUE(mailbox.Deliver(Make(1, 7, "kept")));
  absl::StatusOr<Message> m = mailbox.Receive(1, 7, absl::ZeroDuration());
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->header, "kept");
}

TEST(MailboxTest, AStopRequestedBeforeTheWaitFailsItWithoutWaiting) {
  Mailbox mailbox;
  mailbox.Connect(1);
  std::stop_source stop;
  stop.request_stop();
  EXPECT_THAT(mailbox.ReceiveAny(3, absl::InfiniteDuration(), stop.get_token()),
              StatusIs(absl::StatusCode::kCancelled, HasSubstr("stopped")));
  // A message already queued is still handed over when nothing stops the wait.
  ASSERT_TRUE(mailbox.Deliver(Make(1, 3, "q")));
  EXPECT_THAT(mailbox.ReceiveAny(3, absl::ZeroDuration(), std::stop_source().get_token()), IsOk());
}

}  // namespace
}  // namespace mmx::transport
