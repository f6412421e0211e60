// Tokenizer-level behaviour: loading errors, the id-space queries, tokenizer_config.json, and
// robustness on arbitrary input (checked on the real DeepSeek-V3 and Qwen3 files).
#include "model/tokenizer/tokenizer.h"

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/utf8.h"
#include "tests/testing/status_matchers.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

const std::string kGoldenDir = MMX_TEST_DATA_DIR "/tokenizer-golden";

std::unique_ptr<Tokenizer> LoadGolden(const std::string& name) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::Load(kGoldenDir + "/" + name + "/tokenizer.json");
  EXPECT_THAT(tokenizer, IsOk());
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

TEST(TokenizerTest, RejectsTextThatIsNotJson) {
  EXPECT_THAT(
      Tokenizer::FromJson("{\"model\": "),
      StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("tokenizer.json: not valid JSON")));
  // Valid syntax, but a number no double holds: an error, not an abort.
  EXPECT_THAT(Tokenizer::FromJson("{\"model\": 1E400}"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("tokenizer.json: not valid JSON")));
  EXPECT_THAT(Tokenizer::FromJson(TokenizerWith(BpeModel({"a"}, {})).dump(), "{\"model_max_length\": 1E400}"),
              StatusIs(absl::StatusCode::kInvalidArgument, StartsWith("tokenizer_config.json: not valid JSON")));
  EXPECT_THAT(Tokenizer::FromJson("[1, 2]"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                      "tokenizer.json: expected a JSON object"));
  EXPECT_THAT(Tokenizer::FromJson("{}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "tokenizer.json: missing \"model\""));
}

TEST(TokenizerTest, UnsupportedComponentNamesPathAndType) {
  TestJson json = TokenizerWith(BpeModel({"a"}, {}));
  json["pre_tokenizer"] = {{"type", "Sequence"},
                           {"pretokenizers", {{{"type", "Digits"}}, {{"type", "Foo"}}}}};
  EXPECT_THAT(Tokenizer::FromJson(json.dump()),
              StatusIs(absl::StatusCode::kUnimplemented,
                       "tokenizer.json: pre_tokenizer.pretokenizers[1]: unsupported type \"Foo\""));
  TestJson unigram = TokenizerWith({{"type", "Unigram"}, {"vocab", TestJson::array()}});
  EXPECT_THAT(Tokenizer::FromJson(unigram.dump()),
              StatusIs(absl::StatusCode::kUnimplemented,
                       "tokenizer.json: model: unsupported type \"Unigram\""));
  TestJson decoder = TokenizerWith(BpeModel({"a"}, {}));
  decoder["decoder"] = {{"type", "Metaspace"}};
  EXPECT_THAT(Tokenizer::FromJson(decoder.dump()),
              StatusIs(absl::StatusCode::kUnimplemented,
                       "tokenizer.json: decoder: unsupported type \"Metaspace\""));
}

TEST(TokenizerTest, PatternThatBacktracksWithoutBoundFailsEncodeNotTheProcess) {
  // A tokenizer.json whose pre-tokenizer or normalizer regex backtracks exponentially: Encode
  // (and the chat layout on top of it) gives ResourceExhausted instead of running for hours.
  TestJson split = TokenizerWith(BpeModel({"a", "!"}, {}));
  split["pre_tokenizer"] = {{"type", "Split"},
                            {"pattern", {{"Regex", "(a+)+$"}}},
                            {"behavior", "Isolated"},
                            {"invert", false}};
  TestJson replace = TokenizerWith(BpeModel({"a", "!"}, {}));
  replace["normalizer"] = {
      {"type", "Replace"}, {"pattern", {{"Regex", "(a|aa)+$"}}}, {"content", "a"}};
  const std::string evil = std::string(40, 'a') + "!";
  for (const TestJson& json : {split, replace}) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(json.dump());
    ASSERT_THAT(tokenizer, IsOk());
    EXPECT_THAT((*tokenizer)->Encode(evil), StatusIs(absl::StatusCode::kResourceExhausted,
                                                      HasSubstr("backtracks without bound")));
    EXPECT_THAT((*tokenizer)->EncodeLiteral(evil),
                StatusIs(absl::StatusCode::kResourceExhausted));
    EXPECT_THAT((*tokenizer)->Encode("aa!"), IsOk());
  }
}

TEST(TokenizerTest, WrongFieldTypesNameThePath) {
  TestJson model = BpeModel({"a"}, {});
  model["byte_fallback"] = "yes";
  EXPECT_THAT(Tokenizer::FromJson(TokenizerWith(model).dump()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tokenizer.json: model.byte_fallback: expected true or false"));
  TestJson bad_id = TokenizerWith(BpeModel({"a"}, {}));
  bad_id["model"]["vocab"]["b"] = -4;
  EXPECT_THAT(Tokenizer::FromJson(bad_id.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model.vocab.b: expected a token id")));
  TestJson added = TokenizerWith(BpeModel({"a"}, {}));
  added["added_tokens"] = {{{"id", 3}}};
  EXPECT_THAT(Tokenizer::FromJson(added.dump()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "tokenizer.json: added_tokens[0]: missing \"content\""));
}

TEST(TokenizerTest, LoadErrorsNameTheFile) {
  EXPECT_THAT(Tokenizer::Load("/nonexistent/tokenizer.json"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/tokenizer.json")));
  const std::string dir = ::testing::TempDir() + "/tokenizer_test_" + std::to_string(getpid());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokenizer.json") << TokenizerWith(BpeModel({"a"}, {})).dump();
  std::ofstream(dir + "/tokenizer_config.json") << "{\"add_bos_token\": 1}";
  EXPECT_THAT(Tokenizer::Load(dir + "/tokenizer.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       dir + "/tokenizer_config.json: add_bos_token: expected true or false"));
  std::ofstream(dir + "/tokenizer_config.json") << "{}";
  std::ofstream(dir + "/tokenizer.json") << "{\"model\": {\"type\": \"WordPiece\"}}";
  EXPECT_THAT(Tokenizer::Load(dir + "/tokenizer.json"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       dir + "/tokenizer.json: model: unsupported type \"WordPiece\""));
  std::filesystem::remove_all(dir);
}

TEST(TokenizerTest, DeepSeekIdSpace) {
  auto tokenizer = LoadGolden("deepseek_v3");
  ASSERT_TRUE(tokenizer);
  // 128,000 vocabulary entries plus added tokens up to 128814; ids 0-2 are in both.
  EXPECT_EQ(tokenizer->vocab_size(), 128815);
  EXPECT_TRUE(tokenizer->IsDefined(128814));
  EXPECT_FALSE(tokenizer->IsDefined(128815));
  EXPECT_FALSE(tokenizer->IsDefined(-1));
  EXPECT_EQ(tokenizer->TokenToId("<\uFF5Cend\u2581of\u2581sentence\uFF5C>"), 1);
  EXPECT_EQ(tokenizer->IdToToken(128805), "<|EOT|>");
  EXPECT_EQ(tokenizer->IdToToken(200000), std::nullopt);
  EXPECT_TRUE(tokenizer->IsSpecial(0));
  EXPECT_TRUE(tokenizer->IsSpecial(128805));
  EXPECT_FALSE(tokenizer->IsSpecial(128803));  // <｜User｜> is not special
  EXPECT_FALSE(tokenizer->IsSpecial(500));
}

TEST(TokenizerTest, ConfigIsReadButDoesNotAddBos) {
  auto tokenizer = LoadGolden("deepseek_v3");
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ(tokenizer->config().add_bos_token, true);
  EXPECT_EQ(tokenizer->config().bos_token, "<\uFF5Cbegin\u2581of\u2581sentence\uFF5C>");
  EXPECT_EQ(tokenizer->config().tokenizer_class, "LlamaTokenizerFast");
  EXPECT_TRUE(tokenizer->config().chat_template.has_value());
  // tokenizer.json's ByteLevel post-processor adds nothing (the golden ids_with_special).
  EXPECT_EQ(*tokenizer->Encode("hi"), *tokenizer->Encode("hi", /*add_special_tokens=*/false));
  EXPECT_NE(tokenizer->Encode("hi")->front(), 0);
}

TEST(TokenizerTest, QwenSkipsOnlySpecialTokensWhenAsked) {
  auto tokenizer = LoadGolden("qwen3");
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ(tokenizer->vocab_size(), 151669);
  const std::vector<int32_t> ids = *tokenizer->Encode("<|im_start|>hi<tool_call><|im_end|>");
  ASSERT_GE(ids.size(), 4u);
  EXPECT_EQ(ids.front(), 151644);
  EXPECT_EQ(ids.back(), 151645);
  EXPECT_EQ(ids[ids.size() - 2], 151657);
  EXPECT_EQ(tokenizer->Decode(ids, /*skip_special_tokens=*/true), "hi<tool_call>");
  EXPECT_EQ(tokenizer->Decode(ids), "<|im_start|>hi<tool_call><|im_end|>");
}

// Arbitrary bytes: Encode replaces invalid UTF-8 by U+FFFD and otherwise round-trips exactly
// through a byte-level vocabulary (DeepSeek-V3 has no normalizer); Decode of any ids, defined
// or not, gives valid UTF-8.
TEST(TokenizerTest, ArbitraryBytesNeverBreakEncodeOrDecode) {
  auto tokenizer = LoadGolden("deepseek_v3");
  ASSERT_TRUE(tokenizer);
  std::mt19937 rng(20240501);
  for (int trial = 0; trial < 300; ++trial) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) {
      // Mostly high bytes and controls, where UTF-8 goes wrong, some ASCII.
      const uint32_t r = rng() % 4;
      c = static_cast<char>(r == 0 ? rng() % 0x80 : r == 1 ? rng() % 0x20 : 0x80 + rng() % 0x80);
    }
    const std::vector<int32_t> ids = *tokenizer->Encode(bytes, /*add_special_tokens=*/false);
    for (int32_t id : ids) ASSERT_TRUE(tokenizer->IsDefined(id)) << id;
    EXPECT_EQ(tokenizer->Decode(ids), ToValidUtf8(bytes)) << "trial " << trial;
  }
  std::uniform_int_distribution<int32_t> any_id(-5, 130000);
  for (int trial = 0; trial < 100; ++trial) {
    std::vector<int32_t> ids(rng() % 32);
    for (int32_t& id : ids) id = any_id(rng);
    EXPECT_TRUE(IsValidUtf8(tokenizer->Decode(ids))) << "trial " << trial;
  }
  EXPECT_THAT(*tokenizer->Encode(""), ElementsAre());
  EXPECT_EQ(tokenizer->Decode({}), "");
  const std::string nul("a\0b", 3);
  EXPECT_EQ(tokenizer->Decode(*tokenizer->Encode(nul)), nul);
}

TEST(TokenizerTest, InvalidInputEncodesAsTheReplacementCharacter) {
  auto tokenizer = LoadGolden("qwen3");
  ASSERT_TRUE(tokenizer);
  EXPECT_EQ(*tokenizer->Encode("a\xFF"
                              "b"),
            *tokenizer->Encode("a\uFFFDb"));
  EXPECT_EQ(*tokenizer->Encode("\xF0\x9F\x98"), *tokenizer->Encode("\uFFFD"));
}

// One tokenizer shared by threads (its BPE cache is the only mutable state) gives each the
// same ids as a lone caller.
TEST(TokenizerTest, ConcurrentEncodesAgree) {
  auto tokenizer = LoadGolden("qwen3");
  ASSERT_TRUE(tokenizer);
  std::vector<std::string> texts;
  for (int i = 0; i < 64; ++i) {
    texts.push_back("word" + std::to_string(i) + " the quick brown fox " +
                    std::to_string(i * 7919));
  }
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& text : texts) expected.push_back(*tokenizer->Encode(text));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 20; ++round) {
        for (size_t i = 0; i < texts.size(); ++i) {
          const size_t k = (i + t * 17 + round) % texts.size();
          mismatches[t] += *tokenizer->Encode(texts[k]) != expected[k];
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_THAT(mismatches, ElementsAre(0, 0, 0, 0));
}

}  // namespace
}  // namespace mmx::tokenizer
