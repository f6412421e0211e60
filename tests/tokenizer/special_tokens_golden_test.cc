// Added and special tokens against tests/data/tokenizer-golden/special (see its README): texts
// holding special and non-special added tokens (and near misses) on Qwen3 and DeepSeek-V3, and
// DeepSeek-V3 with the BOS template Python transformers builds from add_bos_token, so that
// add_special_tokens changes the ids. Ids, pairs and both skip_special_tokens decodes come from
// HF's tokenizers.js, cross-checked there against the Rust crate.
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;

const std::string kGoldenDir = MMX_TEST_DATA_DIR "/tokenizer-golden";

std::string ReadText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A variant is a base tokenizer.json with, optionally, its post_processor replaced.
absl::StatusOr<std::unique_ptr<Tokenizer>> LoadVariant(const nlohmann::json& variant) {
  std::string json = ReadText(kGoldenDir + "/" + variant["base"].get<std::string>() +
                              "/tokenizer.json");
  if (variant.contains("post_processor")) {
    nlohmann::json parsed = nlohmann::json::parse(json);
    parsed["post_processor"] = variant["post_processor"];
    json = parsed.dump();
  }
  return Tokenizer::FromJson(json);
}

class SpecialTokensGoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    golden_ = new nlohmann::json(
        nlohmann::json::parse(ReadText(kGoldenDir + "/special/cases.json")));
    tokenizers_ = new std::map<std::string, std::unique_ptr<Tokenizer>>();
    for (const auto& [name, variant] : (*golden_)["variants"].items()) {
      absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = LoadVariant(variant);
      ASSERT_THAT(tokenizer, IsOk()) << name;
      (*tokenizers_)[name] = *std::move(tokenizer);
    }
  }
  static void TearDownTestSuite() {
    delete tokenizers_;
    delete golden_;
  }

  static const Tokenizer& TokenizerFor(const nlohmann::json& c) {
    return *tokenizers_->at(c["tokenizer"].get<std::string>());
  }

  static nlohmann::json* golden_;
  static std::map<std::string, std::unique_ptr<Tokenizer>>* tokenizers_;
};

nlohmann::json* SpecialTokensGoldenTest::golden_ = nullptr;
std::map<std::string, std::unique_ptr<Tokenizer>>* SpecialTokensGoldenTest::tokenizers_ = nullptr;

TEST_F(SpecialTokensGoldenTest, EveryVariantLoadsAndHasCases) {
  ASSERT_EQ(tokenizers_->size(), 3u);
  std::map<std::string, int> per_variant;
  for (const nlohmann::json& c : (*golden_)["cases"]) ++per_variant[c["tokenizer"]];
  EXPECT_EQ(per_variant["qwen3"], 13);
  EXPECT_EQ(per_variant["deepseek_v3"], 11);
  EXPECT_EQ(per_variant["deepseek_v3_bos_template"], 14);
}

TEST_F(SpecialTokensGoldenTest, EncodeWithAndWithoutSpecialTokens) {
  int with_bos = 0;
  for (const nlohmann::json& c : (*golden_)["cases"]) {
    if (c.contains("text_pair")) continue;
    const std::string text = c["text"];
    const Tokenizer& tokenizer = TokenizerFor(c);
    EXPECT_EQ(*tokenizer.Encode(text, /*add_special_tokens=*/false), c["ids"].get<std::vector<int32_t>>())
        << c["tokenizer"] << " " << c["text"];
    const std::vector<int32_t> ids_with_special = c["ids_with_special"].get<std::vector<int32_t>>();
    EXPECT_EQ(*tokenizer.Encode(text, /*add_special_tokens=*/true), ids_with_special)
        << c["tokenizer"] << " " << c["text"];
    with_bos += ids_with_special != c["ids"].get<std::vector<int32_t>>();
  }
  // The flag must matter somewhere, or this test could not tell it from ignoring it.
  EXPECT_EQ(with_bos, 11);
}

TEST_F(SpecialTokensGoldenTest, EncodePairs) {
  int pairs = 0;
  for (const nlohmann::json& c : (*golden_)["cases"]) {
    if (!c.contains("text_pair")) continue;
    ++pairs;
    const std::string a = c["text"], b = c["text_pair"];
    const Tokenizer& tokenizer = TokenizerFor(c);
    absl::StatusOr<std::vector<int32_t>> plain = tokenizer.EncodePair(a, b, false);
    absl::StatusOr<std::vector<int32_t>> with_special = tokenizer.EncodePair(a, b, true);
    ASSERT_THAT(plain, IsOk());
    ASSERT_THAT(with_special, IsOk());
    EXPECT_EQ(*plain, c["ids"].get<std::vector<int32_t>>()) << a << " | " << b;
    EXPECT_EQ(*with_special, c["ids_with_special"].get<std::vector<int32_t>>()) << a << " | " << b;
  }
  EXPECT_EQ(pairs, 3);
}

TEST_F(SpecialTokensGoldenTest, DecodeKeepingAndSkippingSpecialTokens) {
  int differ = 0;
  for (const nlohmann::json& c : (*golden_)["cases"]) {
    if (c.contains("text_pair")) continue;
    const std::vector<int32_t> ids = c["ids_with_special"].get<std::vector<int32_t>>();
    const Tokenizer& tokenizer = TokenizerFor(c);
    EXPECT_EQ(tokenizer.Decode(ids, /*skip_special_tokens=*/false), c["decoded"].get<std::string>())
        << c["tokenizer"] << " " << c["text"];
    EXPECT_EQ(tokenizer.Decode(ids, /*skip_special_tokens=*/true),
              c["decoded_skip_special"].get<std::string>())
        << c["tokenizer"] << " " << c["text"];
    differ += c["decoded"] != c["decoded_skip_special"];
  }
  EXPECT_EQ(differ, 24);
}

}  // namespace
}  // namespace mmx::tokenizer
