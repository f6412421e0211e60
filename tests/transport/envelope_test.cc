// Envelope codec: one corruption per test (in the manner of LevelDB's log_test), then random
// round trips and random bytes.
#include "transport/envelope.h"

#include <cstdint>
#include <random>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "transport/crc32c.h"

namespace mmx::transport {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

// Field offsets as drawn in docs/protocol.md; the tests poke the bytes directly.
constexpr size_t kVersionAt = 4;
constexpr size_t kFlagsAt = 6;
constexpr size_t kSenderAt = 8;
constexpr size_t kHeaderBytesAt = 12;
constexpr size_t kClusterTokenAt = 16;  // 16 bytes
constexpr size_t kKeyAt = 32;
constexpr size_t kPayloadBytesAt = 40;
constexpr size_t kReservedAt = 48;
constexpr size_t kChecksumAt = 52;

void PutLE(std::string* frame, size_t at, uint64_t value, size_t bytes) {
  for (size_t i = 0; i < bytes; ++i) (*frame)[at + i] = static_cast<char>(value >> (8 * i));
}

// Recomputes the checksum so a test can isolate a structural check from the checksum.
void Reseal(std::string* frame) {
  uint32_t crc = Crc32c(0, frame->data(), kChecksumAt);
  crc = Crc32c(crc, frame->data() + kEnvelopeBytes, frame->size() - kEnvelopeBytes);
  PutLE(frame, kChecksumAt, crc, 4);
}

class EnvelopeTest : public ::testing::Test {
 protected:
  EnvelopeTest() {
    envelope_.sender = 7;
    envelope_.cluster_token = ClusterToken{0x0123456789ABCDEFull, 0x1122334455667788ull};
    envelope_.key = 0xFEDCBA9876543210ull;
    envelope_.payload_bytes = 12288;
    EXPECT_THAT(EncodeFrame(envelope_, "step=3 layer=17", &frame_), IsOk());
  }

  absl::StatusOr<DecodedFrame> Decode() { return DecodeFrame(frame_, envelope_.payload_bytes); }

  Envelope envelope_;
  std::string frame_;
};

TEST(ClusterTokenTest, HasOneHundredTwentyEightRandomBitsAndRoundTripsAsSixteenBytes) {
  const ClusterToken a = ClusterToken::Random();
  const ClusterToken b = ClusterToken::Random();
  EXPECT_FALSE(a.Equals(b));  // 2^-128 to fail
  EXPECT_NE(a.high, 0u);      // both halves are filled (2^-64 to fail)
  absl::StatusOr<ClusterToken> back = ClusterToken::FromBytes(a.ToBytes());
  ASSERT_THAT(back, IsOk());
  EXPECT_TRUE(back->Equals(a));
  EXPECT_EQ((ClusterToken{0x0102, 0xFF}.ToBytes()), std::string("\x02\x01\0\0\0\0\0\0\xFF\0\0\0\0\0\0\0", 16));
  EXPECT_THAT(ClusterToken::FromBytes("12345678"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("8 bytes, expected 16")));
}

TEST(Crc32cTest, MatchesTheStandardCheckValue) {
  EXPECT_EQ(Crc32c(0, "123456789", 9), 0xE3069283u);
  EXPECT_EQ(Crc32c(Crc32c(0, "1234", 4), "56789", 5), 0xE3069283u);
}

TEST_F(EnvelopeTest, RoundTrips) {
  ASSERT_EQ(frame_.size(), kEnvelopeBytes + 15);
  absl::StatusOr<DecodedFrame> decoded = Decode();
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->envelope.sender, 7u);
  EXPECT_EQ(decoded->envelope.cluster_token.low, 0x0123456789ABCDEFull);
  EXPECT_EQ(decoded->envelope.cluster_token.high, 0x1122334455667788ull);
  EXPECT_EQ(decoded->envelope.key, 0xFEDCBA9876543210ull);
  EXPECT_EQ(decoded->envelope.payload_bytes, 12288u);
  EXPECT_EQ(decoded->header, "step=3 layer=17");
}

TEST_F(EnvelopeTest, IsLittleEndianOnTheWire) {
  EXPECT_EQ(frame_.substr(0, 4), "MMXT");
  EXPECT_EQ(static_cast<uint8_t>(frame_[kSenderAt]), 7);
  EXPECT_EQ(static_cast<uint8_t>(frame_[kClusterTokenAt]), 0xEF);
  EXPECT_EQ(static_cast<uint8_t>(frame_[kClusterTokenAt + 8]), 0x88);
  EXPECT_EQ(static_cast<uint8_t>(frame_[kKeyAt]), 0x10);
  EXPECT_EQ(static_cast<uint8_t>(frame_[kKeyAt + 7]), 0xFE);
  EXPECT_EQ(static_cast<uint8_t>(frame_[kPayloadBytesAt + 1]), 0x30);  // 12288 = 0x3000
}

TEST_F(EnvelopeTest, EmptyHeaderAndPayloadRoundTrip) {
  envelope_.payload_bytes = 0;
  ASSERT_THAT(EncodeFrame(envelope_, "", &frame_), IsOk());
  absl::StatusOr<DecodedFrame> decoded = DecodeFrame(frame_, 0);
  ASSERT_THAT(decoded, IsOk());
  EXPECT_EQ(decoded->header, "");
}

TEST_F(EnvelopeTest, RejectsEmptyFrame) {
  EXPECT_THAT(DecodeFrame("", 0), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame size")));
}

TEST_F(EnvelopeTest, RejectsFrameTruncatedInsidePrefix) {
  frame_.resize(kEnvelopeBytes - 1);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame size")));
}

TEST_F(EnvelopeTest, RejectsFrameTruncatedInsideHeader) {
  frame_.pop_back();
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header_bytes")));
}

TEST_F(EnvelopeTest, RejectsTrailingBytes) {
  frame_.push_back('x');
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header_bytes")));
}

TEST_F(EnvelopeTest, RejectsBadMagic) {
  frame_[0] ^= 0x01;
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("magic")));
}

TEST_F(EnvelopeTest, RejectsUnknownVersion) {
  PutLE(&frame_, kVersionAt, 1, 2);  // the 64-bit token of version 1
  Reseal(&frame_);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("version")));
}

TEST_F(EnvelopeTest, RejectsNonZeroFlags) {
  PutLE(&frame_, kFlagsAt, 1, 2);
  Reseal(&frame_);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("flags")));
}

TEST_F(EnvelopeTest, RejectsNonZeroReserved) {
  PutLE(&frame_, kReservedAt, 0x80000000u, 4);
  Reseal(&frame_);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("reserved")));
}

TEST_F(EnvelopeTest, RejectsHeaderLengthPastTheFrame) {
  PutLE(&frame_, kHeaderBytesAt, 16, 4);  // one byte more than follows
  Reseal(&frame_);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header_bytes")));
}

TEST_F(EnvelopeTest, RejectsHeaderLengthOverTheLimit) {
  PutLE(&frame_, kHeaderBytesAt, 0xFFFFFFFFu, 4);
  Reseal(&frame_);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss,
                                 HasSubstr("header_bytes: 4294967295 exceeds the limit")));
}

TEST_F(EnvelopeTest, RejectsPayloadLengthOverTheLimit) {
  PutLE(&frame_, kPayloadBytesAt, ~uint64_t{0}, 8);
  Reseal(&frame_);
  EXPECT_THAT(DecodeFrame(frame_, ~uint64_t{0}),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_bytes")));
}

TEST_F(EnvelopeTest, RejectsPayloadLengthOtherThanReceived) {
  EXPECT_THAT(DecodeFrame(frame_, envelope_.payload_bytes - 1),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_bytes: 12288 but 12287")));
}

TEST_F(EnvelopeTest, RejectsForgedPayloadLength) {
  PutLE(&frame_, kPayloadBytesAt, 1 << 20, 8);  // claims more than arrived, checksum resealed
  Reseal(&frame_);
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("payload_bytes")));
}

TEST_F(EnvelopeTest, ChecksumCatchesFlippedSender) {
  frame_[kSenderAt] ^= 0x02;
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(EnvelopeTest, ChecksumCatchesFlippedToken) {
  frame_[kClusterTokenAt + 3] ^= 0x40;
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(EnvelopeTest, ChecksumCatchesFlippedKey) {
  frame_[kKeyAt + 7] ^= 0x80;
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(EnvelopeTest, ChecksumCatchesFlippedHeaderByte) {
  frame_[kEnvelopeBytes + 4] ^= 0x01;
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(EnvelopeTest, ChecksumCatchesFlippedChecksum) {
  frame_[kChecksumAt] ^= 0x01;
  EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST_F(EnvelopeTest, EveryFlippedBitIsCaught) {
  const std::string good = frame_;
  for (size_t byte = 0; byte < good.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      frame_ = good;
      frame_[byte] ^= static_cast<char>(1 << bit);
      EXPECT_THAT(Decode(), StatusIs(absl::StatusCode::kDataLoss))
          << "byte " << byte << " bit " << bit;
    }
  }
}

TEST_F(EnvelopeTest, DecodesPrefixAndHeaderApart) {
  const absl::string_view prefix = absl::string_view(frame_).substr(0, kEnvelopeBytes);
  const absl::string_view header = absl::string_view(frame_).substr(kEnvelopeBytes);
  absl::StatusOr<Envelope> envelope = DecodePrefix(prefix);
  ASSERT_THAT(envelope, IsOk());
  EXPECT_EQ(envelope->header_bytes, 15u);
  EXPECT_EQ(envelope->payload_bytes, 12288u);
  EXPECT_EQ(envelope->key, 0xFEDCBA9876543210ull);
  EXPECT_THAT(VerifyChecksum(prefix, header), IsOk());
}

TEST_F(EnvelopeTest, DecodePrefixWantsExactlyThePrefix) {
  EXPECT_THAT(DecodePrefix(frame_), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame size")));
  EXPECT_THAT(DecodePrefix(absl::string_view(frame_).substr(0, kEnvelopeBytes - 1)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("frame size")));
}

TEST_F(EnvelopeTest, VerifyChecksumCatchesAHeaderThatTravelledApart) {
  const std::string prefix = frame_.substr(0, kEnvelopeBytes);
  std::string header = frame_.substr(kEnvelopeBytes);
  header[0] ^= 0x20;
  EXPECT_THAT(VerifyChecksum(prefix, header),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("checksum")));
}

TEST(EnvelopeEncodeTest, RejectsOversizedHeader) {
  std::string frame;
  EXPECT_THAT(EncodeFrame(Envelope{}, std::string(kMaxHeaderBytes + 1, 'h'), &frame),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("header of 65537 bytes")));
  EXPECT_THAT(EncodeFrame(Envelope{}, std::string(kMaxHeaderBytes, 'h'), &frame), IsOk());
}

TEST(EnvelopeEncodeTest, RejectsOversizedPayload) {
  Envelope envelope;
  envelope.payload_bytes = kMaxPayloadBytes + 1;
  std::string frame;
  EXPECT_THAT(EncodeFrame(envelope, "", &frame),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("payload")));
}

TEST(EnvelopeRandomTest, RandomFramesRoundTrip) {
  std::mt19937_64 rng(20240601);
  for (int i = 0; i < 2000; ++i) {
    Envelope envelope;
    envelope.sender = static_cast<PeerId>(rng());
    envelope.cluster_token = ClusterToken{rng(), rng()};
    envelope.key = rng();
    envelope.payload_bytes = rng() % (kMaxPayloadBytes + 1);
    std::string header(rng() % 300, '\0');
    for (char& c : header) c = static_cast<char>(rng());
    std::string frame;
    ASSERT_THAT(EncodeFrame(envelope, header, &frame), IsOk());
    absl::StatusOr<DecodedFrame> decoded = DecodeFrame(frame, envelope.payload_bytes);
    ASSERT_THAT(decoded, IsOk());
    EXPECT_EQ(decoded->envelope.sender, envelope.sender);
    EXPECT_TRUE(decoded->envelope.cluster_token.Equals(envelope.cluster_token));
    EXPECT_EQ(decoded->envelope.key, envelope.key);
    EXPECT_EQ(decoded->envelope.payload_bytes, envelope.payload_bytes);
    EXPECT_EQ(decoded->header, header);
  }
}

// Random bytes, and valid frames with random bytes overwritten, must decode to an error (or, by
// a 2^-32 fluke, a frame) without reading out of bounds: run under -fsanitize=address to see.
TEST(EnvelopeRandomTest, RandomBytesNeverCrash) {
  std::mt19937_64 rng(7);
  Envelope envelope;
  envelope.payload_bytes = 64;
  std::string valid;
  ASSERT_THAT(EncodeFrame(envelope, "0123456789", &valid), IsOk());
  int decoded_ok = 0;
  for (int i = 0; i < 20000; ++i) {
    std::string frame;
    if (i % 2 == 0) {
      frame.resize(rng() % 128);
      for (char& c : frame) c = static_cast<char>(rng());
    } else {
      frame = valid;
      frame.resize(rng() % (valid.size() + 8), 'z');
      for (int n = 0; n < 3 && !frame.empty(); ++n) frame[rng() % frame.size()] = rng();
    }
    // Decode from a buffer of exactly frame.size() bytes so ASan sees any overread.
    std::unique_ptr<char[]> exact(new char[frame.size() + 1]);
    std::copy(frame.begin(), frame.end(), exact.get());
    absl::StatusOr<DecodedFrame> decoded =
        DecodeFrame(absl::string_view(exact.get(), frame.size()), rng() % 2 ? 64 : rng());
    if (decoded.ok()) {
      ++decoded_ok;
    } else {
      EXPECT_EQ(decoded.status().code(), absl::StatusCode::kDataLoss);
    }
  }
  EXPECT_LT(decoded_ok, 20000 / 8);  // only untouched valid frames (or flukes) decode
}

}  // namespace
}  // namespace mmx::transport
