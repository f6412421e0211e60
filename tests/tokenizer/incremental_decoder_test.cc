// IncrementalDecoder on a byte tokenizer (id b = byte b), so that characters can be made to
// arrive one byte at a time.
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/utf8.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace mmx::tokenizer {
namespace {

using ::testing::ElementsAre;

constexpr int32_t kEos = 256;

std::vector<std::string> Deltas(IncrementalDecoder& decoder, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(decoder.Add(id));
  return out;
}

class IncrementalDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    tokenizer_ = Build(ByteTokenizer());
    ASSERT_TRUE(tokenizer_);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(IncrementalDecoderTest, FourByteEmojiOneByteAtATimeIsEmittedWhole) {
  IncrementalDecoder decoder(*tokenizer_, /*skip_special_tokens=*/false);
  // 'a', 😀 = F0 9F 98 80, 'b'
  EXPECT_THAT(Deltas(decoder, {'a', 0xF0, 0x9F, 0x98, 0x80, 'b'}),
              ElementsAre("a", "", "", "", "\U0001F600", "b"));
  EXPECT_EQ(decoder.Flush(), "");
}

TEST_F(IncrementalDecoderTest, InvalidByteBecomesReplacementOnceTheNextIdArrives) {
  IncrementalDecoder decoder(*tokenizer_, false);
  EXPECT_THAT(Deltas(decoder, {0xFF, 'a'}), ElementsAre("", "\uFFFDa"));
  EXPECT_EQ(decoder.Flush(), "");
}

TEST_F(IncrementalDecoderTest, FlushTurnsAnIncompleteCharacterIntoOneReplacement) {
  IncrementalDecoder decoder(*tokenizer_, false);
  EXPECT_THAT(Deltas(decoder, {'x', 0xF0, 0x9F}), ElementsAre("x", "", ""));
  EXPECT_EQ(decoder.Flush(), "\uFFFD");
}

TEST_F(IncrementalDecoderTest, SpecialTokensFollowSkipSpecialTokens) {
  IncrementalDecoder keep(*tokenizer_, /*skip_special_tokens=*/false);
  IncrementalDecoder skip(*tokenizer_, /*skip_special_tokens=*/true);
  EXPECT_THAT(Deltas(keep, {'o', 'k', kEos}), ElementsAre("o", "k", "<eos>"));
  EXPECT_THAT(Deltas(skip, {'o', 'k', kEos, '!'}), ElementsAre("o", "k", "", "!"));
}

// Whatever the ids, the deltas are valid UTF-8 and add up to Decode of all of them.
TEST_F(IncrementalDecoderTest, DeltasConcatenateToTheFullDecode) {
  std::mt19937 rng(7);
  const std::string sample = "h\u00E9llo \u4E16\u754C \U0001F600\U0001F44D\U0001F3FD!";
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<int32_t> ids;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) {
      const uint32_t r = rng() % 10;
      if (r < 6) {
        ids.push_back(static_cast<uint8_t>(sample[rng() % sample.size()]));  // maybe mid-char
      } else if (r < 9) {
        ids.push_back(static_cast<int32_t>(rng() % 256));
      } else {
        ids.push_back(kEos);
      }
    }
    for (bool skip : {false, true}) {
      IncrementalDecoder decoder(*tokenizer_, skip);
      std::string streamed;
      for (int32_t id : ids) {
        const std::string delta = decoder.Add(id);
        ASSERT_TRUE(IsValidUtf8(delta)) << "trial " << trial;
        streamed += delta;
      }
      const std::string rest = decoder.Flush();
      ASSERT_TRUE(IsValidUtf8(rest));
      streamed += rest;
      EXPECT_EQ(streamed, tokenizer_->Decode(ids, skip)) << "trial " << trial;
    }
  }
}

}  // namespace
}  // namespace mmx::tokenizer
