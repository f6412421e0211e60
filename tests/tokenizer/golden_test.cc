// The tokenizer against tests/data/tokenizer-golden (see its README): two real byte-level BPE
// tokenizers, Qwen3 and DeepSeek-V3, and 91 texts each, with ids and decoded text from HF's
// tokenizers.js (cross-checked there against the Rust crate). Every case must match exactly;
// failures name the case index and category.
#include <chrono>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "nlohmann/json.hpp"
#include "tests/testing/status_matchers.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;

const std::string kGoldenDir = MMX_TEST_DATA_DIR "/tokenizer-golden";

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
  std::vector<int32_t> ids_with_special;
  std::string decoded;
};

std::vector<GoldenCase> ReadCases(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  std::vector<GoldenCase> cases;
  for (const nlohmann::json& c : nlohmann::json::parse(text.str())) {
    cases.push_back({c["text"].get<std::string>(), c["ids"].get<std::vector<int32_t>>(),
                     c["ids_with_special"].get<std::vector<int32_t>>(),
                     c["decoded"].get<std::string>()});
  }
  return cases;
}

std::string Show(const std::vector<int32_t>& ids) {
  return absl::StrCat("[", absl::StrJoin(ids, ","), "]");
}

// The first index where two id lists differ, with a little context, for a readable failure.
std::string FirstDifference(const std::vector<int32_t>& got, const std::vector<int32_t>& want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t from = i >= 3 ? i - 3 : 0;
  auto window = [&](const std::vector<int32_t>& ids) {
    return Show(std::vector<int32_t>(ids.begin() + std::min(from, ids.size()),
                                     ids.begin() + std::min(i + 5, ids.size())));
  };
  return "first difference at id " + std::to_string(i) + " (got " + std::to_string(got.size()) +
         " ids, want " + std::to_string(want.size()) + "): got ..." + window(got) + " want ..." +
         window(want);
}

void CheckAllCases(const std::string& name, size_t expected_cases) {
  const std::string dir = kGoldenDir + "/" + name;
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::Load(dir + "/tokenizer.json");
  ASSERT_THAT(tokenizer, IsOk());
  const auto loaded = std::chrono::steady_clock::now();
  const std::vector<GoldenCase> cases = ReadCases(dir + "/cases.json");
  ASSERT_EQ(cases.size(), expected_cases);
  int num_passed = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const GoldenCase& c = cases[i];
    const std::vector<int32_t> ids = *(*tokenizer)->Encode(c.text, /*add_special_tokens=*/false);
    const std::vector<int32_t> ids_with_special = *(*tokenizer)->Encode(c.text);
    const std::string decoded = (*tokenizer)->Decode(c.ids);
    EXPECT_EQ(ids, c.ids) << name << " case " << i << ": ids: " << FirstDifference(ids, c.ids);
    EXPECT_EQ(ids_with_special, c.ids_with_special)
        << name << " case " << i
        << ": ids_with_special: " << FirstDifference(ids_with_special, c.ids_with_special);
    EXPECT_EQ(decoded, c.decoded) << name << " case " << i << ": decoded";
    num_passed += ids == c.ids && ids_with_special == c.ids_with_special && decoded == c.decoded;
  }
  const auto done = std::chrono::steady_clock::now();
  std::printf("%s: %d/%zu cases pass; load %.0f ms, %zu cases %.0f ms\n", name.c_str(), num_passed,
              cases.size(), std::chrono::duration<double, std::milli>(loaded - start).count(),
              cases.size(), std::chrono::duration<double, std::milli>(done - loaded).count());
}

TEST(TokenizerGoldenTest, Qwen3MatchesEveryCase) { CheckAllCases("qwen3", 91); }

TEST(TokenizerGoldenTest, DeepSeekV3MatchesEveryCase) { CheckAllCases("deepseek_v3", 91); }

}  // namespace
}  // namespace mmx::tokenizer
