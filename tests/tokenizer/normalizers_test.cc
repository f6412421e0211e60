#include "model/tokenizer/normalizers.h"

#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;

std::string Normalize(const Json& json, const std::string& text) {
  absl::StatusOr<std::unique_ptr<Normalizer>> normalizer = ParseNormalizer(json, "normalizer");
  EXPECT_THAT(normalizer, IsOk());
  if (!normalizer.ok()) return "<error>";
  absl::StatusOr<std::string> normalized = (*normalizer)->Normalize(text);
  EXPECT_THAT(normalized, IsOk());
  return normalized.ok() ? *normalized : "<error>";
}

TEST(NormalizersTest, UnicodeForms) {
  EXPECT_EQ(Normalize({{"type", "NFC"}}, "e\u0301"), "\u00E9");
  EXPECT_EQ(Normalize({{"type", "NFC"}}, "\u1100\u1161\u11A8"), "\uAC01");  // jamo -> 각
  EXPECT_EQ(Normalize({{"type", "NFC"}}, "\u212B"), "\u00C5");              // Angstrom sign -> Å
  EXPECT_EQ(Normalize({{"type", "NFD"}}, "\u00E9"), "e\u0301");
  EXPECT_EQ(Normalize({{"type", "NFKC"}}, "\uFB01x\u00B2"), "fix2");  // ﬁ ligature, superscript
  EXPECT_EQ(Normalize({{"type", "NFKD"}}, "\uFB01\u00E9"), "fie\u0301");
  EXPECT_EQ(Normalize({{"type", "NFC"}}, std::string("a\0b", 3)), std::string("a\0b", 3));
}

TEST(NormalizersTest, LowercaseIsFullUnicode) {
  EXPECT_EQ(Normalize({{"type", "Lowercase"}}, "HELLO \u00C0\u00C9 \u0394"),
            "hello \u00E0\u00E9 \u03B4");
}

TEST(NormalizersTest, ReplaceStringAndRegex) {
  EXPECT_EQ(Normalize({{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}},
                      "a b  c"),
            "a\u2581b\u2581\u2581c");
  EXPECT_EQ(Normalize({{"type", "Replace"}, {"pattern", {{"Regex", "\\s+"}}}, {"content", " "}},
                      "a \t\n b"),
            "a b");
}

TEST(NormalizersTest, PrependOnlyToNonEmptyText) {
  EXPECT_EQ(Normalize({{"type", "Prepend"}, {"prepend", "\u2581"}}, "ab"), "\u2581ab");
  EXPECT_EQ(Normalize({{"type", "Prepend"}, {"prepend", "\u2581"}}, ""), "");
}

TEST(NormalizersTest, SequenceRunsInOrderAndMayBeEmpty) {
  const Json llama = {
      {"type", "Sequence"},
      {"normalizers",
       {{{"type", "Prepend"}, {"prepend", "\u2581"}},
        {{"type", "Replace"}, {"pattern", {{"String", " "}}}, {"content", "\u2581"}}}}};
  EXPECT_EQ(Normalize(llama, "a b"), "\u2581a\u2581b");
  EXPECT_EQ(Normalize({{"type", "Sequence"}, {"normalizers", Json::array()}}, "x y"), "x y");
}

TEST(NormalizersTest, StripAndStripAccents) {
  EXPECT_EQ(Normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", true}}, "  a b \n"),
            "a b");
  EXPECT_EQ(
      Normalize({{"type", "Strip"}, {"strip_left", true}, {"strip_right", false}}, "  a b \n"),
      "a b \n");
  EXPECT_EQ(Normalize({{"type", "Strip"}}, " \u3000 "), "");
  EXPECT_EQ(Normalize({{"type", "Sequence"},
                       {"normalizers", {{{"type", "NFD"}}, {{"type", "StripAccents"}}}}},
                      "caf\u00E9"),
            "cafe");
}

TEST(NormalizersTest, UnsupportedTypeNamesThePath) {
  EXPECT_THAT(ParseNormalizer({{"type", "Sequence"},
                               {"normalizers", {{{"type", "NFC"}}, {{"type", "BertNormalizer"}}}}},
                              "normalizer"),
              StatusIs(absl::StatusCode::kUnimplemented,
                       "normalizer.normalizers[1]: unsupported type \"BertNormalizer\""));
}

}  // namespace
}  // namespace mmx::tokenizer
