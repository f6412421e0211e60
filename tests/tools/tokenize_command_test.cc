// `mmx tokenize` / `mmx detokenize` as users call them: the real binary, no server, text on
// stdin. Checks the output formats against the library and the golden ids, and that bad input
// gives one error line and a non-zero exit.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/process.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_maker.h"
#include "nlohmann/json.hpp"

namespace mmx::coordinator {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

const std::string kMmx = std::string(MMX_BINARY_DIR) + "/bin/mmx";
const std::string kGoldenDir = std::string(MMX_TEST_DATA_DIR) + "/tokenizer-golden";

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

using ::mmx::testing::ReadFile;

class TokenizeCommandTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "/tokenize_command_" + std::to_string(getpid());
    std::filesystem::create_directories(dir_);
    // The test tokenizer, and a copy whose post-processor adds BOS (to see --no-special).
    tokenizer_path_ = dir_ + "/tokenizer.json";
    std::ofstream(tokenizer_path_) << tokenizer::MakeTestTokenizerJson(512);
    Json with_bos = Json::parse(tokenizer::MakeTestTokenizerJson(512));
    with_bos["post_processor"] = {
        {"type", "TemplateProcessing"},
        {"single",
         {{{"SpecialToken", {{"id", "bos"}, {"type_id", 0}}}},
          {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}},
        {"special_tokens", {{"bos", {{"id", "bos"}, {"ids", {510}}, {"tokens", {"bos"}}}}}}};
    std::filesystem::create_directories(dir_ + "/bos");
    bos_tokenizer_path_ = dir_ + "/bos/tokenizer.json";
    std::ofstream(bos_tokenizer_path_) << with_bos.dump();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  RunResult Run(const std::string& args, const std::string& stdin_text) {
    const std::string in_file = dir_ + "/stdin.txt";
    std::ofstream(in_file, std::ios::binary) << stdin_text;
    const ::mmx::testing::ProcessResult p = ::mmx::testing::RunShell(kMmx + " " + args + " <" + in_file, absl::Seconds(60));
    RunResult r;
    r.exit_code = p.exit_code;
    r.out = p.out;
    r.err = p.err;
    return r;
  }

  std::string dir_;
  std::string tokenizer_path_;
  std::string bos_tokenizer_path_;
};

int CountLines(const std::string& s) {
  return static_cast<int>(std::count(s.begin(), s.end(), '\n'));
}

TEST_F(TokenizeCommandTest, TokenizePrintsTheLibrarysIds) {
  const std::string text = "The model reads the text.\n";
  auto tokenizer = tokenizer::Tokenizer::Load(tokenizer_path_);
  ASSERT_TRUE(tokenizer.ok());
  const std::vector<int32_t> ids = *(*tokenizer)->Encode(text);

  RunResult plain = Run("tokenize --tokenizer " + tokenizer_path_, text);
  ASSERT_EQ(plain.exit_code, 0) << plain.err;
  EXPECT_EQ(plain.out, absl::StrJoin(ids, " ") + "\n");

  RunResult json = Run("tokenize --json --tokenizer " + tokenizer_path_, text);
  ASSERT_EQ(json.exit_code, 0) << json.err;
  EXPECT_EQ(CountLines(json.out), 1);
  const Json parsed = Json::parse(json.out);
  EXPECT_EQ(parsed.size(), 1u);
  EXPECT_EQ(parsed["ids"].get<std::vector<int32_t>>(), ids);
}

TEST_F(TokenizeCommandTest, NoSpecialLeavesOutThePostProcessorsTokens) {
  RunResult with = Run("tokenize --tokenizer " + bos_tokenizer_path_, "~");
  RunResult without = Run("tokenize --no-special --tokenizer " + bos_tokenizer_path_, "~");
  ASSERT_EQ(with.exit_code, 0) << with.err;
  ASSERT_EQ(without.exit_code, 0) << without.err;
  EXPECT_EQ(with.out, "510 126\n");  // byte tokens are ids 0..255 in byte order
  EXPECT_EQ(without.out, "126\n");
}

TEST_F(TokenizeCommandTest, TokenizeReproducesGoldenIds) {
  const Json cases = Json::parse(ReadFile(kGoldenDir + "/qwen3/cases.json"));
  const Json& c = cases[80];  // a Qwen chat with special tokens
  RunResult r =
      Run("tokenize --json --no-special --tokenizer " + kGoldenDir + "/qwen3/tokenizer.json",
          c["text"].get<std::string>());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(Json::parse(r.out)["ids"], c["ids"]);
}

TEST_F(TokenizeCommandTest, DetokenizeRoundTrips) {
  const std::string text = "h\u00E9llo \U0001F600\n";
  RunResult ids = Run("tokenize --json --tokenizer " + tokenizer_path_, text);
  ASSERT_EQ(ids.exit_code, 0) << ids.err;
  // Both the bare array and tokenize --json's object are accepted.
  RunResult from_object = Run("detokenize --tokenizer " + tokenizer_path_, ids.out);
  ASSERT_EQ(from_object.exit_code, 0) << from_object.err;
  EXPECT_EQ(from_object.out, text);
  RunResult from_array =
      Run("detokenize --tokenizer " + tokenizer_path_, Json::parse(ids.out)["ids"].dump());
  ASSERT_EQ(from_array.exit_code, 0) << from_array.err;
  EXPECT_EQ(from_array.out, text);
}

TEST_F(TokenizeCommandTest, DetokenizeSkipSpecial) {
  RunResult keep = Run("detokenize --tokenizer " + tokenizer_path_, "[510, 72, 105, 511]");
  RunResult skip =
      Run("detokenize --skip-special --tokenizer " + tokenizer_path_, "[510, 72, 105, 511]");
  ASSERT_EQ(keep.exit_code, 0) << keep.err;
  ASSERT_EQ(skip.exit_code, 0) << skip.err;
  EXPECT_EQ(keep.out, "<beginning_of_sentence>Hi<end_of_sentence>");
  EXPECT_EQ(skip.out, "Hi");
}

TEST_F(TokenizeCommandTest, BadInputIsOneErrorLineAndNonZeroExit) {
  RunResult missing = Run("tokenize --tokenizer " + dir_ + "/none.json", "x");
  EXPECT_NE(missing.exit_code, 0);
  EXPECT_EQ(CountLines(missing.err), 1) << missing.err;
  EXPECT_THAT(missing.err, AllOf(StartsWith("mmx: error: "), HasSubstr(dir_ + "/none.json")));
  EXPECT_EQ(missing.out, "");

  RunResult not_json = Run("detokenize --tokenizer " + tokenizer_path_, "1 2 3]");
  EXPECT_NE(not_json.exit_code, 0);
  EXPECT_EQ(CountLines(not_json.err), 1) << not_json.err;
  EXPECT_THAT(not_json.err, HasSubstr("not JSON"));

  RunResult huge = Run("detokenize --tokenizer " + tokenizer_path_, "[1E400]");
  EXPECT_NE(huge.exit_code, 0);
  EXPECT_EQ(CountLines(huge.err), 1) << huge.err;
  EXPECT_THAT(huge.err, HasSubstr("not JSON"));

  RunResult out_of_range = Run("detokenize --tokenizer " + tokenizer_path_, "[72, 512]");
  EXPECT_NE(out_of_range.exit_code, 0);
  EXPECT_EQ(CountLines(out_of_range.err), 1) << out_of_range.err;
  EXPECT_THAT(out_of_range.err, HasSubstr("id 512 is not defined by the tokenizer"));
  EXPECT_EQ(out_of_range.out, "");

  RunResult not_ids = Run("detokenize --tokenizer " + tokenizer_path_, "[\"a\"]");
  EXPECT_NE(not_ids.exit_code, 0);
  EXPECT_THAT(not_ids.err, HasSubstr("element 0 is \"a\", not a token id"));

  RunResult no_tokenizer = Run("tokenize", "x");
  EXPECT_NE(no_tokenizer.exit_code, 0);
  EXPECT_EQ(CountLines(no_tokenizer.err), 1) << no_tokenizer.err;
}

}  // namespace
}  // namespace mmx::coordinator
