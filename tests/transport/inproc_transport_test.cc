#include "transport/inproc_transport.h"

#include <cstdint>
#include <memory>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "transport/envelope.h"

namespace mmx::transport {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr ClusterToken kToken{0x5EC2E7, 0x1234};

std::vector<uint8_t> Bytes(size_t n, uint8_t seed) {
  std::vector<uint8_t> bytes(n);
  for (size_t i = 0; i < n; ++i) bytes[i] = static_cast<uint8_t>(seed + 31 * i);
  return bytes;
}

class InprocTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    a_ = Make("a", 1, kToken);
    b_ = Make("b", 2, kToken);
    ASSERT_THAT(a_->Connect(2, "b"), IsOk());
    ASSERT_THAT(b_->Connect(1, "a"), IsOk());
  }

  std::unique_ptr<InprocTransport> Make(const std::string& name, PeerId self, ClusterToken token) {
    absl::StatusOr<std::unique_ptr<InprocTransport>> t =
        InprocTransport::Create(fabric_, name, TransportOptions{self, token});
    EXPECT_THAT(t, IsOk());
    return t.ok() ? std::move(*t) : nullptr;
  }

  std::shared_ptr<InprocFabric> fabric_ = std::make_shared<InprocFabric>();
  std::unique_ptr<InprocTransport> a_;
  std::unique_ptr<InprocTransport> b_;
};

TEST_F(InprocTransportTest, DeliversHeaderAndPayloadByKeyRegardlessOfOrder) {
  const std::vector<uint8_t> p1 = Bytes(1000, 1), p2 = Bytes(10, 2), p3 = Bytes(0, 3);
  ASSERT_THAT(a_->Send(2, 300, "three", p3.data(), p3.size()), IsOk());
  ASSERT_THAT(a_->Send(2, 100, "one", p1.data(), p1.size()), IsOk());
  ASSERT_THAT(a_->Send(2, 200, "two", p2.data(), p2.size()), IsOk());
  for (auto [key, header, payload] : {std::tuple{100, "one", &p1}, std::tuple{200, "two", &p2},
                                      std::tuple{300, "three", &p3}}) {
    absl::StatusOr<Message> m = b_->Receive(1, key, absl::Seconds(5));
    ASSERT_THAT(m, IsOk());
    EXPECT_EQ(m->from, 1u);
    EXPECT_EQ(m->key, static_cast<uint64_t>(key));
    EXPECT_EQ(m->header, header);
    EXPECT_EQ(m->payload, *payload);
  }
  EXPECT_EQ(b_->dropped_messages(), 0u);
}

TEST_F(InprocTransportTest, BothDirections) {
  const uint8_t x = 42;
  ASSERT_THAT(b_->Send(1, 9, "", &x, 1), IsOk());
  absl::StatusOr<Message> m = a_->Receive(2, 9, absl::Seconds(5));
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(m->payload, ElementsAre(42));
}

TEST_F(InprocTransportTest, ReceiveAnyTakesFromEveryPeer) {
  std::unique_ptr<InprocTransport> c = Make("c", 3, kToken);
  ASSERT_THAT(c->Connect(2, "b"), IsOk());
  ASSERT_THAT(b_->Connect(3, "c"), IsOk());
  ASSERT_THAT(a_->Send(2, 5, "from a", nullptr, 0), IsOk());
  ASSERT_THAT(c->Send(2, 5, "from c", nullptr, 0), IsOk());
  std::vector<PeerId> senders;
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Message> m = b_->ReceiveAny(5, absl::Seconds(5));
    ASSERT_THAT(m, IsOk());
    senders.push_back(m->from);
  }
  EXPECT_THAT(senders, ElementsAre(1, 3));
}

TEST_F(InprocTransportTest, WaitingReceiverGetsMessageFromAnotherThread) {
  absl::StatusOr<Message> got;
  std::thread receiver([&] { got = b_->Receive(1, 77, absl::Seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  ASSERT_THAT(a_->Send(2, 77, "late", nullptr, 0), IsOk());
  receiver.join();
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->header, "late");
}

TEST_F(InprocTransportTest, ReceiveTimesOutWithDeadlineExceeded) {
  EXPECT_THAT(b_->Receive(1, 1234, absl::Milliseconds(10)),
              StatusIs(absl::StatusCode::kDeadlineExceeded, HasSubstr("key 1234")));
}

TEST_F(InprocTransportTest, DisconnectFailsWaitingAndLaterReceivesAndSends) {
  absl::StatusOr<Message> got;
  std::thread receiver([&] { got = b_->Receive(1, 5, absl::Seconds(30)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  b_->Disconnect(1);
  receiver.join();
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kUnavailable, HasSubstr("peer 1")));
  EXPECT_THAT(b_->Receive(1, 5, absl::Seconds(1)), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(b_->Send(1, 5, "", nullptr, 0),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("not connected")));
  // a still sends to b, but b no longer accepts a: dropped and counted.
  ASSERT_THAT(a_->Send(2, 5, "", nullptr, 0), IsOk());
  EXPECT_EQ(b_->dropped_messages(), 1u);
  EXPECT_THAT(b_->last_drop(), StatusIs(absl::StatusCode::kUnavailable,
                                        HasSubstr("peer 1, which is not a connected peer")));
}

TEST_F(InprocTransportTest, ConnectToUnknownAddressIsUnavailable) {
  EXPECT_THAT(a_->Connect(9, "nowhere"),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("nowhere")));
}

TEST_F(InprocTransportTest, DuplicateAddressIsRejected) {
  EXPECT_THAT(InprocTransport::Create(fabric_, "a", TransportOptions{5, kToken}),
              StatusIs(absl::StatusCode::kAlreadyExists));
}

TEST_F(InprocTransportTest, DropsMessageFromNonPeer) {
  std::unique_ptr<InprocTransport> stranger = Make("stranger", 9, kToken);
  ASSERT_THAT(stranger->Connect(2, "b"), IsOk());  // it knows b; b does not know it
  ASSERT_THAT(stranger->Send(2, 5, "hi", nullptr, 0), IsOk());
  EXPECT_EQ(b_->dropped_messages(), 1u);
  EXPECT_THAT(b_->last_drop(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("from peer 9")));
  EXPECT_THAT(b_->ReceiveAny(5, absl::Milliseconds(10)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(InprocTransportTest, DropsMessageWithWrongToken) {
  // Claims to be peer 1 (which b accepts), but carries another cluster's token.
  std::unique_ptr<InprocTransport> forger = Make("forger", 1, ClusterToken{kToken.low + 1, kToken.high});
  ASSERT_THAT(forger->Connect(2, "b"), IsOk());
  ASSERT_THAT(forger->Send(2, 5, "forged", nullptr, 0), IsOk());
  EXPECT_EQ(b_->dropped_messages(), 1u);
  EXPECT_THAT(b_->last_drop(),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("wrong cluster token")));
  EXPECT_THAT(b_->Receive(1, 5, absl::Milliseconds(10)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
}

TEST_F(InprocTransportTest, DropsMalformedEnvelopes) {
  Envelope envelope;
  envelope.sender = 1;
  envelope.cluster_token = kToken;
  envelope.key = 5;
  envelope.payload_bytes = 4;
  std::string frame;
  ASSERT_THAT(EncodeFrame(envelope, "h", &frame), IsOk());
  const uint8_t payload[4] = {1, 2, 3, 4};

  ASSERT_THAT(fabric_->DeliverRaw("b", frame.substr(0, 20), payload, 4), IsOk());
  EXPECT_THAT(b_->last_drop(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame size")));
  ASSERT_THAT(fabric_->DeliverRaw("b", frame, payload, 3), IsOk());  // short payload
  EXPECT_THAT(b_->last_drop(),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_bytes")));
  std::string flipped = frame;
  flipped[kEnvelopeBytes] ^= 1;
  ASSERT_THAT(fabric_->DeliverRaw("b", flipped, payload, 4), IsOk());
  EXPECT_THAT(b_->last_drop(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  EXPECT_EQ(b_->dropped_messages(), 3u);

  // The untouched frame still goes through.
  ASSERT_THAT(fabric_->DeliverRaw("b", frame, payload, 4), IsOk());
  absl::StatusOr<Message> m = b_->Receive(1, 5, absl::Seconds(1));
  ASSERT_THAT(m, IsOk());
  EXPECT_THAT(m->payload, ElementsAre(1, 2, 3, 4));
  EXPECT_EQ(b_->dropped_messages(), 3u);
}

TEST_F(InprocTransportTest, OversizedHeaderIsInvalidArgument) {
  EXPECT_THAT(a_->Send(2, 1, std::string(kMaxHeaderBytes + 1, 'x'), nullptr, 0),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(InprocTransportTest, ShutdownCancelsReceiversAndSends) {
  absl::StatusOr<Message> got;
  std::thread receiver([&] { got = b_->ReceiveAny(3, absl::InfiniteDuration()); });
  std::this_thread::sleep_for(std::chrono::milliseconds(10));
  b_->Shutdown();
  receiver.join();
  EXPECT_THAT(got, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(b_->Send(1, 1, "", nullptr, 0), StatusIs(absl::StatusCode::kCancelled));
}

TEST_F(InprocTransportTest, SendToDestroyedTransportIsUnavailable) {
  b_.reset();
  EXPECT_THAT(a_->Send(2, 1, "", nullptr, 0),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("'b'")));
}

}  // namespace
}  // namespace mmx::transport
