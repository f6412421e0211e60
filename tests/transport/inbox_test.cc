// Inbox: the trust checks both transports share. The transports' own tests cover the common
// paths end to end; these pin down the split-header admission UCX uses for large headers.
#include "transport/inbox.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::transport {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

constexpr ClusterToken kToken{99, 0xA5A5};

class InboxTest : public ::testing::Test {
 protected:
  InboxTest() {
    inbox_.mailbox().Connect(3);
    Envelope envelope;
    envelope.sender = 3;
    envelope.cluster_token = kToken;
    envelope.key = 8;
    envelope.payload_bytes = 10;
    EXPECT_THAT(EncodeFrame(envelope, "header", &frame_), IsOk());
    prefix_ = frame_.substr(0, kEnvelopeBytes);
  }

  Inbox inbox_{kToken};
  std::string frame_;
  std::string prefix_;
};

TEST_F(InboxTest, AcceptDeliversAWellFormedMessage) {
  const char payload[10] = "012345678";
  inbox_.Accept(frame_, payload, 10);
  absl::StatusOr<Message> m = inbox_.mailbox().Receive(3, 8, absl::ZeroDuration());
  ASSERT_THAT(m, IsOk());
  EXPECT_EQ(m->header, "header");
  EXPECT_EQ(m->payload.size(), 10u);
  EXPECT_EQ(inbox_.dropped(), 0u);
  EXPECT_THAT(inbox_.last_drop(), IsOk());
}

TEST_F(InboxTest, AdmitPrefixChecksHeaderPlusPayloadAgainstTheData) {
  EXPECT_THAT(inbox_.AdmitPrefix(prefix_, 16), IsOk());  // 6 header + 10 payload
  EXPECT_THAT(inbox_.AdmitPrefix(prefix_, 15),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_bytes")));
  EXPECT_EQ(inbox_.dropped(), 1u);
}

TEST_F(InboxTest, AdmitPrefixChecksTokenAndSender) {
  Inbox other(ClusterToken{kToken.low, kToken.high + 1});  // differs only in the high half
  other.mailbox().Connect(3);
  EXPECT_THAT(other.AdmitPrefix(prefix_, 16), StatusIs(absl::StatusCode::kPermissionDenied));
  Inbox stranger(kToken);  // knows no peers
  EXPECT_THAT(stranger.AdmitPrefix(prefix_, 16),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("peer 3")));
  EXPECT_EQ(other.dropped(), 1u);
  EXPECT_EQ(stranger.dropped(), 1u);
}

TEST_F(InboxTest, VerifyHeaderCountsACorruptHeader) {
  EXPECT_THAT(inbox_.VerifyHeader(prefix_, "header"), IsOk());
  EXPECT_THAT(inbox_.VerifyHeader(prefix_, "Header"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
  EXPECT_EQ(inbox_.dropped(), 1u);
  EXPECT_THAT(inbox_.last_drop(), StatusIs(absl::StatusCode::kDataLoss));
}

TEST_F(InboxTest, DeliveryAfterDisconnectIsCounted) {
  absl::StatusOr<Envelope> envelope = inbox_.AdmitPrefix(prefix_, 16);
  ASSERT_THAT(envelope, IsOk());
  inbox_.mailbox().Disconnect(3);  // e.g. while a rendezvous payload was in flight
  Message message;
  message.from = 3;
  message.key = 8;
  inbox_.Deliver(std::move(message));
  EXPECT_EQ(inbox_.dropped(), 1u);
  EXPECT_THAT(inbox_.last_drop(),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("after it was disconnected")));
}

}  // namespace
}  // namespace mmx::transport
