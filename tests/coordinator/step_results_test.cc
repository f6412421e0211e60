#include "coordinator/step_results.h"

#include <memory>
#include <vector>

#include "coordinator/waiting_room.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_maker.h"

namespace mmx::coordinator {
namespace {

constexpr int64_t kVocab = 512;

const tokenizer::Tokenizer& TestTokenizer() {
  static const auto* t = tokenizer::Tokenizer::FromJson(tokenizer::MakeTestTokenizerJson(512)).value().release();
  return *t;
}

class StepResultsTest : public ::testing::Test {
 protected:
  ScheduledRequest Add(Request::Params p, bool text = false) {
    auto r = std::make_shared<Request>(next_id_++, p,
                                       text ? std::make_unique<TextStream>(TestTokenizer(), p.stop_strings) : nullptr);
    requests_.push_back({r, absl::Now()});
    return requests_.back();
  }
  // A decode step of `s` that sampled `token`.
  void Decode(ScheduledRequest& s, int32_t token) {
    MicroBatchResult result;
    result.tokens[s.request->id()].set_token_id(token);
    PlannedSequence p{0, 0, 1, /*prefill=*/false, /*sample=*/true};
    ApplyResult({s.request.get()}, {p}, result, kVocab, absl::Now(), &metrics_);
  }
  static Request::Params Params(int max_tokens = 8) {
    Request::Params p;
    p.prompt = {1, 2, 3, 4};
    p.max_tokens = max_tokens;
    return p;
  }

  Metrics metrics_;
  std::vector<ScheduledRequest> requests_;
  uint64_t next_id_ = 1;
};

TEST_F(StepResultsTest, PromptChunksAdvanceTheRequestAndOnlyTheLastOneSamples) {
  ScheduledRequest s = Add(Params());
  MicroBatchResult result;
  ApplyResult({s.request.get()}, {{0, 0, 3, true, false}}, result, kVocab, absl::Now(), &metrics_);
  EXPECT_EQ(s.request->processed, 3);
  EXPECT_TRUE(s.request->output.empty());
  result.tokens[s.request->id()].set_token_id(40);
  ApplyResult({s.request.get()}, {{0, 3, 1, true, true}}, result, kVocab, absl::Now(), &metrics_);
  EXPECT_EQ(s.request->processed, 4);
  EXPECT_EQ(s.request->output, std::vector<int32_t>{40});
  EXPECT_FALSE(s.request->done());
}

TEST_F(StepResultsTest, AStopIdEndsTheRequestWithStop) {
  Request::Params p = Params();
  p.stop_ids = {7};
  ScheduledRequest s = Add(p);
  Decode(s, 5);
  EXPECT_FALSE(s.request->done());
  Decode(s, 7);
  EXPECT_TRUE(s.request->done());
  EXPECT_EQ(s.request->finish_reason(), "stop");
  EXPECT_EQ(s.request->output, (std::vector<int32_t>{5, 7}));
}

TEST_F(StepResultsTest, MaxTokensEndsTheRequestWithLength) {
  ScheduledRequest s = Add(Params(/*max_tokens=*/2));
  Decode(s, 5);
  Decode(s, 6);
  EXPECT_TRUE(s.request->done());
  EXPECT_EQ(s.request->finish_reason(), "length");
}

TEST_F(StepResultsTest, AStopStringAcrossTokensEndsTheRequestAndIsLeftOutOfTheText) {
  Request::Params p = Params();
  p.stop_strings = {"cd"};
  ScheduledRequest s = Add(p, /*text=*/true);
  for (char c : std::string("abc")) Decode(s, c);  // byte tokens: id b is the byte b
  EXPECT_FALSE(s.request->done());
  Decode(s, 'd');
  EXPECT_TRUE(s.request->done());
  EXPECT_EQ(s.request->finish_reason(), "stop");
  EXPECT_EQ(s.request->text(), "ab");
}

TEST_F(StepResultsTest, ARequestCancelledMidStepGetsNoTokenButKeepsItsProgress) {
  ScheduledRequest a = Add(Params()), b = Add(Params());
  a.request->Fail(absl::CancelledError("cancelled by the client"));
  MicroBatchResult result;
  result.tokens[a.request->id()].set_token_id(9);
  result.tokens[b.request->id()].set_token_id(10);
  ApplyResult({a.request.get(), b.request.get()}, {{0, 0, 4, true, true}, {1, 0, 4, true, true}}, result, kVocab, absl::Now(), &metrics_);
  EXPECT_EQ(a.request->processed, 4);
  EXPECT_TRUE(a.request->output.empty());
  EXPECT_EQ(b.request->output, std::vector<int32_t>{10});
}

TEST_F(StepResultsTest, ReturnedLogitsAccumulateInPositionOrder) {
  Request::Params p = Params();
  p.return_logits = true;
  ScheduledRequest s = Add(p);
  MicroBatchResult result;
  result.logits[s.request->id()].assign(3 * kVocab, 1.f);
  ApplyResult({s.request.get()}, {{0, 0, 3, true, false}}, result, kVocab, absl::Now(), &metrics_);
  result.logits[s.request->id()].assign(1 * kVocab, 2.f);
  result.tokens[s.request->id()].set_token_id(3);
  ApplyResult({s.request.get()}, {{0, 3, 1, true, true}}, result, kVocab, absl::Now(), &metrics_);
  const std::vector<float> logits = s.request->logits();
  ASSERT_EQ(logits.size(), 4u * kVocab);
  EXPECT_EQ(logits[3 * kVocab - 1], 1.f);
  EXPECT_EQ(logits[3 * kVocab], 2.f);
}

}  // namespace
}  // namespace mmx::coordinator
