#include "coordinator/text_stream.h"

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_maker.h"

namespace mmx::coordinator {
namespace {

const tokenizer::Tokenizer& TestTokenizer() {
  static const auto* t = tokenizer::Tokenizer::FromJson(tokenizer::MakeTestTokenizerJson(512)).value().release();
  return *t;
}

// Feeds `ids` through a stream; returns the concatenated deltas and where it stopped.
struct Fed {
  std::vector<std::string> deltas;
  std::string text;
  int stopped_at = -1;
};
Fed Feed(const std::vector<int32_t>& ids, std::vector<std::string> stops, bool finish = true) {
  TextStream s(TestTokenizer(), std::move(stops));
  Fed r;
  for (size_t i = 0; i < ids.size(); ++i) {
    bool stopped = false;
    r.deltas.push_back(s.Add(ids[i], &stopped));
    r.text += r.deltas.back();
    if (stopped) {
      r.stopped_at = static_cast<int>(i);
      return r;
    }
  }
  if (finish) {
    bool stopped = false;
    r.text += s.Finish(&stopped);
    if (stopped) r.stopped_at = static_cast<int>(ids.size());
  }
  EXPECT_EQ(s.text(), r.text);
  return r;
}

// Byte tokens: in the test tokenizer id b < 256 is the single byte b.
std::vector<int32_t> Bytes(const std::string& s) {
  std::vector<int32_t> ids;
  for (unsigned char c : s) ids.push_back(c);
  return ids;
}

TEST(TextStreamTest, WithoutStopStringsEveryTokenReleasesItsTextAtOnce) {
  const std::vector<int32_t> ids = *TestTokenizer().Encode("hello world, the end", false);
  const Fed r = Feed(ids, {}, /*finish=*/false);
  EXPECT_EQ(r.text, "hello world, the end");
  for (const std::string& d : r.deltas) EXPECT_FALSE(d.empty());
}

TEST(TextStreamTest, NeverSplitsAMultiByteCharacter) {
  // "é" (2 bytes) and "🙂" (4 bytes) arrive one byte token at a time.
  const Fed r = Feed(Bytes("aé🙂b"), {}, false);
  EXPECT_EQ(r.text, "aé🙂b");
  EXPECT_EQ(r.deltas, (std::vector<std::string>{"a", "", "é", "", "", "", "🙂", "b"}));
}

TEST(TextStreamTest, StopsAtAStopStringAndDropsIt) {
  const Fed r = Feed(Bytes("one two STOP three"), {"STOP"});
  EXPECT_EQ(r.text, "one two ");
  EXPECT_EQ(r.stopped_at, 11);  // the token that completed "STOP"
}

TEST(TextStreamTest, HoldsBackOnlyWhatCouldStartAStopString) {
  const Fed r = Feed(Bytes("abcdef"), {"xyz"}, /*finish=*/false);
  // Two bytes stay held back ("ef" might begin "xyz"... as far as the stream knows).
  EXPECT_EQ(r.text, "abcd");
  const Fed finished = Feed(Bytes("abcdef"), {"xyz"});
  EXPECT_EQ(finished.text, "abcdef");
  EXPECT_EQ(finished.stopped_at, -1);
}

TEST(TextStreamTest, EarliestOfSeveralStopStringsWins) {
  const Fed r = Feed(Bytes("xx--yy##"), {"##", "--"});
  EXPECT_EQ(r.text, "xx");
}

TEST(TextStreamTest, StopStringSpanningTokensAndMultiByteText) {
  const Fed r = Feed(Bytes("naïve café"), {"é"});
  EXPECT_EQ(r.text, "naïve caf");
}

TEST(TextStreamTest, SpecialTokensAreLeftOutOfTheText) {
  const int32_t eos = *TestTokenizer().TokenToId("<end_of_sentence>");
  std::vector<int32_t> ids = Bytes("hi");
  ids.push_back(eos);
  EXPECT_EQ(Feed(ids, {}).text, "hi");
}

TEST(Utf8BoundaryTest, StepsBackOverContinuationBytes) {
  const std::string s = "a\xC3\xA9";  // a é
  EXPECT_EQ(Utf8Boundary(s, 3), 3u);
  EXPECT_EQ(Utf8Boundary(s, 2), 1u);
  EXPECT_EQ(Utf8Boundary(s, 1), 1u);
  EXPECT_EQ(Utf8Boundary(s, 0), 0u);
}

}  // namespace
}  // namespace mmx::coordinator
