#include "coordinator/step_codec.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "transport/wire_check.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

constexpr int64_t kVocab = 16;
transport::WireLimits Limits() { return transport::WireLimits{8, kVocab, 2, 4}; }

std::vector<SequenceStep> TwoSequences() {
  SequenceStep prompt;
  prompt.sequence_id = 7;
  prompt.start_position = 0;
  prompt.tokens = {3, 4, 5};
  prompt.sample = false;
  prompt.return_logits = true;
  SequenceStep decode;
  decode.sequence_id = 9;
  decode.start_position = 11;
  decode.tokens = {2};
  decode.sampling.temperature = 0.5f;
  decode.sampling.seed = 42;
  decode.logprobs = 3;
  return {prompt, decode};
}

TEST(StepCodecTest, EncodesEverySequencesPartAndTheTokensInHeaderOrder) {
  const OutgoingMicroBatch mb = EncodeMicroBatch(5, 1, 2, TwoSequences(), {1, 2});
  EXPECT_EQ(mb.header.step_id(), 5u);
  EXPECT_EQ(mb.header.micro_batch(), 1u);
  EXPECT_EQ(mb.header.num_micro_batches(), 2u);
  EXPECT_EQ(mb.header.layer(), -1);
  ASSERT_EQ(mb.header.sequences_size(), 2);
  EXPECT_EQ(mb.header.sequences(0).num_tokens(), 3);
  EXPECT_TRUE(mb.header.sequences(0).return_logits());
  EXPECT_FALSE(mb.header.sequences(0).sample());
  EXPECT_EQ(mb.header.sequences(1).start_position(), 11);
  EXPECT_FLOAT_EQ(mb.header.sequences(1).temperature(), 0.5f);
  EXPECT_EQ(mb.header.sequences(1).seed(), 42u);
  EXPECT_EQ(mb.header.sequences(1).logprobs(), 3);
  EXPECT_EQ(mb.tokens, (std::vector<int32_t>{3, 4, 5, 2}));
  EXPECT_THAT(mb.header.freed_sequences(), ::testing::ElementsAre(1u, 2u));
  // What the head checks before it uses a field.
  transport::Message m;
  m.header = mb.header.SerializeAsString();
  m.payload.resize(mb.tokens.size() * 4);
  std::memcpy(m.payload.data(), mb.tokens.data(), m.payload.size());
  EXPECT_THAT(transport::CheckStep(m, Limits()).status(), IsOk());
}

// The tail's reply to TwoSequences(): sequence 9's token and sequence 7's three logits rows.
transport::Message Reply(int logits_rows = 3, bool with_token = true) {
  v1::TokensHeader t;
  if (with_token) {
    v1::SampledToken* token = t.add_tokens();
    token->set_sequence_id(9);
    token->set_token_id(6);
  }
  v1::LogitsRows* rows = t.add_logits();
  rows->set_sequence_id(7);
  rows->set_num_rows(logits_rows);
  v1::WorkerTime* time = t.add_timings();
  time->set_peer_id(1);
  time->set_weight_bytes(100);
  transport::Message m;
  m.header = t.SerializeAsString();
  std::vector<float> logits(logits_rows * kVocab);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = static_cast<float>(i);
  m.payload.resize(logits.size() * 4);
  std::memcpy(m.payload.data(), logits.data(), m.payload.size());
  return m;
}

TEST(StepCodecTest, DecodesTokensLogitsAndTimings) {
  const OutgoingMicroBatch mb = EncodeMicroBatch(5, 0, 1, TwoSequences());
  absl::StatusOr<MicroBatchResult> r = DecodeReply(Reply(), mb.header, Limits());
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->tokens.count(9), 1u);
  EXPECT_EQ(r->tokens.at(9).token_id(), 6);
  ASSERT_EQ(r->logits.count(7), 1u);
  ASSERT_EQ(r->logits.at(7).size(), 3u * kVocab);
  EXPECT_EQ(r->logits.at(7)[kVocab], static_cast<float>(kVocab));  // row 1 starts where it was sent
  ASSERT_EQ(r->timings.size(), 1u);
  EXPECT_EQ(r->timings[0].weight_bytes(), 100u);
}

TEST(StepCodecTest, RefusesARepliesThatDoNotAnswerWhatWasSent) {
  const OutgoingMicroBatch mb = EncodeMicroBatch(5, 0, 1, TwoSequences());
  EXPECT_THAT(DecodeReply(Reply(/*logits_rows=*/2), mb.header, Limits()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("did not ask")));
  EXPECT_THAT(DecodeReply(Reply(3, /*with_token=*/false), mb.header, Limits()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no token for sequence 9")));
}

// A prompt chunk whose rows are scored against the prompt's next tokens (prompt_logprobs).
TEST(StepCodecTest, ScoredPromptRowsGoOutAndComeBackChecked) {
  std::vector<SequenceStep> sequences = TwoSequences();
  sequences[0].return_logits = false;
  sequences[0].next_token_ids = {4, 5};  // rows 0 and 1; row 2 predicts a generated token
  sequences[0].prompt_logprobs = 2;
  const OutgoingMicroBatch mb = EncodeMicroBatch(5, 0, 1, sequences);
  EXPECT_THAT(mb.header.sequences(0).next_token_ids(), ::testing::ElementsAre(4, 5));
  EXPECT_EQ(mb.header.sequences(0).prompt_logprobs(), 2);
  transport::Message step;
  step.header = mb.header.SerializeAsString();
  step.payload.resize(mb.tokens.size() * 4);
  std::memcpy(step.payload.data(), mb.tokens.data(), step.payload.size());
  EXPECT_THAT(transport::CheckStep(step, Limits()).status(), IsOk());

  auto reply = [](std::vector<int32_t> scored) {
    v1::TokensHeader t;
    v1::SampledToken* token = t.add_tokens();
    token->set_sequence_id(9);
    token->set_token_id(6);
    v1::PromptRows* rows = t.add_prompt();
    rows->set_sequence_id(7);
    for (int32_t id : scored) {
      v1::SampledToken* row = rows->add_rows();
      row->set_token_id(id);
      row->set_logprob(-1.f);
    }
    transport::Message m;
    m.header = t.SerializeAsString();
    return m;
  };
  absl::StatusOr<MicroBatchResult> r = DecodeReply(reply({4, 5}), mb.header, Limits());
  ASSERT_THAT(r, IsOk());
  ASSERT_EQ(r->prompt.count(7), 1u);
  EXPECT_EQ(r->prompt.at(7).size(), 2u);
  EXPECT_THAT(DecodeReply(reply({4}), mb.header, Limits()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("did not ask for that many")));
  EXPECT_THAT(DecodeReply(reply({4, 9}), mb.header, Limits()),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("wrong token")));
  // More rows to score than the step has tokens: the head refuses the step.
  sequences[0].next_token_ids = {4, 5, 6, 7};
  const OutgoingMicroBatch bad = EncodeMicroBatch(5, 0, 1, sequences);
  step.header = bad.header.SerializeAsString();
  EXPECT_FALSE(transport::CheckStep(step, Limits()).ok());
}

TEST(StepCodecTest, AWorkersErrorKeepsItsCode) {
  v1::TokensHeader t;
  t.set_error("worker stage0: sequence 7 at position 3 but this stage holds no state for it");
  t.set_error_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
  transport::Message m;
  m.header = t.SerializeAsString();
  EXPECT_THAT(DecodeReply(m, EncodeMicroBatch(5, 0, 1, TwoSequences()).header, Limits()),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("stage0")));
}

}  // namespace
}  // namespace mmx::coordinator
