// Data-plane messages are checked field by field before use: each forged or truncated message
// is refused with DataLoss naming the problem. And activation rows in either wire dtype.
#include "transport/wire_check.h"

#include <cstring>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "transport/activation_rows.h"

namespace mmx::transport {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

WireLimits Tiny() { return WireLimits{96, 512, 8, 8}; }  // the golden tiny-a model

transport::Message StepMessage(int layer, std::vector<int> lengths, size_t payload_bytes) {
  v1::StepHeader h;
  h.set_step_id(1);
  h.set_layer(layer);
  uint64_t id = 1;
  for (int n : lengths) {
    auto* s = h.add_sequences();
    s->set_sequence_id(id++);
    s->set_num_tokens(n);
  }
  transport::Message m;
  m.header = h.SerializeAsString();
  m.payload.assign(payload_bytes, 0);
  return m;
}

TEST(WireCheckTest, AcceptsWellFormedTokensAndActivations) {
  EXPECT_THAT(CheckStep(StepMessage(-1, {3, 2}, 5 * 4), Tiny()).status(), IsOk());
  EXPECT_THAT(CheckStep(StepMessage(2, {3, 2}, 5 * 96 * 4), Tiny()).status(), IsOk());
}

TEST(WireCheckTest, RejectsAPayloadShorterThanTheHeaderSays) {
  EXPECT_THAT(CheckStep(StepMessage(2, {3, 2}, 5 * 96 * 4 - 4), Tiny()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header implies 5 rows")));
}

TEST(WireCheckTest, RejectsAHeaderThatDoesNotParse) {
  transport::Message m = StepMessage(-1, {1}, 4);
  m.header = "\xff\xff\xff garbage";
  EXPECT_THAT(CheckStep(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("does not parse")));
}

TEST(WireCheckTest, RejectsOutOfRangeLayersTokensAndCounts) {
  EXPECT_THAT(CheckStep(StepMessage(9, {1}, 96 * 4), Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("layer 9")));
  EXPECT_THAT(CheckStep(StepMessage(0, {0}, 0), Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("num_tokens 0")));
  transport::Message bad_token = StepMessage(-1, {1}, 4);
  const int32_t id = 512;
  std::memcpy(bad_token.payload.data(), &id, 4);
  EXPECT_THAT(CheckStep(bad_token, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("token id 512")));
  transport::Message dup = StepMessage(-1, {1, 1}, 8);
  v1::StepHeader h;
  h.ParseFromString(dup.header);
  h.mutable_sequences(1)->set_sequence_id(1);
  dup.header = h.SerializeAsString();
  EXPECT_THAT(CheckStep(dup, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("listed twice")));
}

TEST(WireCheckTest, RejectsForgedDispatches) {
  v1::DispatchHeader d;
  d.set_layer(3);
  d.add_expert_ids(1);
  d.add_expert_ids(8);
  d.add_weights(0.5f);
  d.add_weights(0.5f);
  transport::Message m;
  m.header = d.SerializeAsString();
  m.payload.assign(2 * 96 * 4, 0);
  EXPECT_THAT(CheckDispatch(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("expert id 8")));
  d.set_expert_ids(1, 7);
  d.add_weights(1.f);
  m.header = d.SerializeAsString();
  EXPECT_THAT(CheckDispatch(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("differ in length")));
  d.mutable_weights()->RemoveLast();
  m.header = d.SerializeAsString();
  EXPECT_THAT(CheckDispatch(m, Tiny()).status(), IsOk());
  m.payload.resize(96 * 4);
  EXPECT_THAT(CheckDispatch(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("dispatch payload")));
}

// bf16 rows (serving.wire_dtype) are half the bytes; each message's own rows_dtype decides, and
// a dtype no protocol version defines is refused.
TEST(WireCheckTest, RowsAreSizedByTheirHeadersDType) {
  transport::Message step = StepMessage(2, {3, 2}, 5 * 96 * 2);
  EXPECT_THAT(CheckStep(step, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("5 rows of 96 fp32")));
  v1::StepHeader h;
  ASSERT_TRUE(h.ParseFromString(step.header));
  h.set_rows_dtype(v1::ROWS_BF16);
  step.header = h.SerializeAsString();
  EXPECT_THAT(CheckStep(step, Tiny()).status(), IsOk());
  step.payload.resize(5 * 96 * 4);
  EXPECT_THAT(CheckStep(step, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("5 rows of 96 bf16")));
  h.set_rows_dtype(static_cast<v1::RowsDType>(7));
  step.header = h.SerializeAsString();
  EXPECT_THAT(CheckStep(step, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("rows_dtype 7 is unknown")));

  v1::DispatchHeader d;
  d.set_layer(1);
  d.add_expert_ids(2);
  d.add_weights(1.f);
  d.set_rows_dtype(v1::ROWS_BF16);
  transport::Message dispatch;
  dispatch.header = d.SerializeAsString();
  dispatch.payload.assign(96 * 2, 0);
  EXPECT_THAT(CheckDispatch(dispatch, Tiny()).status(), IsOk());

  v1::CombineHeader c;
  c.set_num_rows(2);
  c.set_rows_dtype(v1::ROWS_BF16);
  transport::Message combine;
  combine.header = c.SerializeAsString();
  combine.payload.assign(2 * 96 * 2, 0);
  EXPECT_THAT(CheckCombine(combine, Tiny(), 2).status(), IsOk());
  combine.payload.assign(2 * 96 * 4, 0);
  EXPECT_THAT(CheckCombine(combine, Tiny(), 2), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("combine payload")));
}

// fp32 rows travel as they are; bf16 rows are rounded to nearest even and widened back exactly.
TEST(ActivationRowsTest, Fp32IsSentInPlaceAndBf16RoundsToNearestEven) {
  const std::vector<float> x = {1.0f, -2.5f, 1.00390625f /* 1 + 2^-8: a tie, to even (1) */,
                                1.01171875f /* 1 + 3 * 2^-8: a tie, to even (1 + 2^-6) */, 3.14159265f, 0.f};
  EncodedRows rows;
  rows.Encode(x.data(), static_cast<int64_t>(x.size()), v1::ROWS_FP32);
  EXPECT_EQ(rows.data(), x.data());
  EXPECT_EQ(rows.bytes(), x.size() * 4);

  rows.Encode(x.data(), static_cast<int64_t>(x.size()), v1::ROWS_BF16);
  ASSERT_EQ(rows.bytes(), x.size() * 2);
  ASSERT_EQ(RowsBytes(v1::ROWS_BF16, static_cast<int64_t>(x.size())), rows.bytes());
  std::vector<float> back(x.size());
  DecodeRows(rows.data(), static_cast<int64_t>(x.size()), v1::ROWS_BF16, back.data());
  EXPECT_EQ(back[0], 1.0f);
  EXPECT_EQ(back[1], -2.5f);
  EXPECT_EQ(back[2], 1.0f);
  EXPECT_EQ(back[3], 1.015625f);
  EXPECT_EQ(back[4], 3.140625f);  // 3.14159265 to 8 significant bits
  EXPECT_EQ(back[5], 0.f);
  EXPECT_EQ(RowsBytes(9, 4), std::nullopt);
  EXPECT_EQ(RowsDTypeOf(DType::kBF16), v1::ROWS_BF16);
  EXPECT_EQ(RowsDTypeOf(DType::kF32), v1::ROWS_FP32);
}

// A received payload's fp32 rows become the receiver's rows in the same memory (the rendezvous
// wrote them there); bf16 rows are widened into the receiver's buffer.
TEST(ActivationRowsTest, ReceivedFp32RowsAreTakenOverAndBf16RowsWidened) {
  const std::vector<float> x = {1.0f, -2.5f, 3.0f, 0.5f};
  Payload payload(x.size() * 4);
  std::memcpy(payload.data(), x.data(), payload.size());
  const void* received = payload.data();
  PooledFloats rows;
  DecodeRows(std::move(payload), static_cast<int64_t>(x.size()), v1::ROWS_FP32, &rows);
  EXPECT_EQ(static_cast<const void*>(rows.data()), received);
  EXPECT_EQ(std::vector<float>(rows.begin(), rows.end()), x);
  EXPECT_TRUE(payload.empty());

  EncodedRows encoded;
  encoded.Encode(x.data(), static_cast<int64_t>(x.size()), v1::ROWS_BF16);
  Payload narrow(encoded.bytes());
  std::memcpy(narrow.data(), encoded.data(), encoded.bytes());
  DecodeRows(std::move(narrow), static_cast<int64_t>(x.size()), v1::ROWS_BF16, &rows);
  EXPECT_EQ(std::vector<float>(rows.begin(), rows.end()), x);  // each exact in bf16
}

TEST(ActivationRowsTest, PayloadsCompareWithByteVectors) {
  Payload p = {1, 2, 3};
  EXPECT_TRUE(p == (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_FALSE(p == (std::vector<uint8_t>{1, 2}));
}

TEST(WireCheckTest, CombineAndTokensAreCheckedToo) {
  v1::CombineHeader c;
  c.set_num_rows(3);
  transport::Message m;
  m.header = c.SerializeAsString();
  m.payload.assign(3 * 96 * 4, 0);
  EXPECT_THAT(CheckCombine(m, Tiny(), 3).status(), IsOk());
  EXPECT_THAT(CheckCombine(m, Tiny(), 2), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("expected 2")));
  c.set_error("no such expert");
  m.header = c.SerializeAsString();
  EXPECT_THAT(CheckCombine(m, Tiny(), 3), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("no such expert")));

  v1::TokensHeader t;
  t.add_tokens()->set_token_id(600);
  m.header = t.SerializeAsString();
  m.payload.clear();
  EXPECT_THAT(CheckTokens(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("outside the vocabulary")));
}

TEST(WireCheckTest, TokensPayloadMustMatchTheirLogitsRows) {
  v1::TokensHeader t;
  t.add_tokens()->set_token_id(5);
  v1::LogitsRows* rows = t.add_logits();
  rows->set_sequence_id(1);
  rows->set_num_rows(3);
  transport::Message m;
  m.header = t.SerializeAsString();
  m.payload.assign(3 * 512 * 4, 0);
  EXPECT_THAT(CheckTokens(m, Tiny()).status(), IsOk());
  m.payload.resize(2 * 512 * 4);
  EXPECT_THAT(CheckTokens(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("imply")));
  rows->set_num_rows(0);
  m.header = t.SerializeAsString();
  m.payload.clear();
  EXPECT_THAT(CheckTokens(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("0 rows")));
  t.clear_logits();
  m.header = t.SerializeAsString();
  m.payload.assign(4, 0);
  EXPECT_THAT(CheckTokens(m, Tiny()), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("imply 0")));
}

TEST(WireCheckTest, RemoteErrorsKeepTheirCode) {
  v1::CombineHeader c;
  c.set_error("expert 3 is not held here");
  c.set_error_code(static_cast<int>(absl::StatusCode::kInvalidArgument));
  transport::Message m;
  m.header = c.SerializeAsString();
  EXPECT_THAT(CheckCombine(m, Tiny(), 1), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not held")));
  EXPECT_THAT(RemoteError(0, "gone"), StatusIs(absl::StatusCode::kUnavailable, HasSubstr("gone")));
  EXPECT_THAT(RemoteError(8, "full"), StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("full")));
  EXPECT_THAT(RemoteError(99, "odd"), StatusIs(absl::StatusCode::kUnknown, HasSubstr("odd")));
}

}  // namespace
}  // namespace mmx::transport
