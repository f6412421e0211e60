#include "model/tokenizer/decoders.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::ElementsAre;

std::vector<std::string> DecodeChain(const Json& json, std::vector<std::string> tokens) {
  absl::StatusOr<std::unique_ptr<Decoder>> decoder = ParseDecoder(json, "decoder");
  EXPECT_THAT(decoder, IsOk());
  return decoder.ok() ? (*decoder)->DecodeChain(std::move(tokens)) : std::vector<std::string>{};
}

TEST(DecodersTest, ByteLevelMapsStandInsBackToBytes) {
  const Json byte_level = {{"type", "ByteLevel"}};
  EXPECT_THAT(DecodeChain(byte_level, {"\u0120hello", "\u010A"}), ElementsAre(" hello\n"));
  // 'Ã' '©' stand for C3 A9, which is é.
  EXPECT_THAT(DecodeChain(byte_level, {"\u00C3", "\u00A9"}), ElementsAre("\u00E9"));
  // 'ÿ' stands for the byte FF, which is not UTF-8.
  EXPECT_THAT(DecodeChain(byte_level, {"a\u00FF"}), ElementsAre("a\uFFFD"));
  // A token with characters outside the alphabet is taken literally.
  EXPECT_THAT(DecodeChain(byte_level, {"\u65E5\u672C", "\u0120x"}), ElementsAre("\u65E5\u672C x"));
}

// Llama-2's decoder chain: sentencepiece's ▁ back to spaces, byte tokens back to bytes.
TEST(DecodersTest, ReplaceByteFallbackFuseStrip) {
  const Json llama = {
      {"type", "Sequence"},
      {"decoders",
       {{{"type", "Replace"}, {"pattern", {{"String", "\u2581"}}}, {"content", " "}},
        {{"type", "ByteFallback"}},
        {{"type", "Fuse"}},
        {{"type", "Strip"}, {"content", " "}, {"start", 1}, {"stop", 0}}}}};
  EXPECT_THAT(DecodeChain(llama, {"\u2581Hello", "\u2581w", "or", "<0x6C>", "d", "<0xE2>", "<0x82>",
                                  "<0xAC>"}),
              ElementsAre("Hello world\u20AC"));
  EXPECT_THAT(DecodeChain(llama, {"<0xE2>", "<0x82>", "x"}), ElementsAre("\uFFFD\uFFFDx"));
}

TEST(DecodersTest, StripRemovesAtMostTheGivenCounts) {
  const Json strip = {{"type", "Strip"}, {"content", "_"}, {"start", 2}, {"stop", 1}};
  EXPECT_THAT(DecodeChain(strip, {"___a__", "_", ""}), ElementsAre("_a_", "", ""));
}

TEST(DecodersTest, UnsupportedTypeNamesThePath) {
  EXPECT_THAT(
      ParseDecoder({{"type", "Sequence"}, {"decoders", {{{"type", "WordPiece"}}}}}, "decoder"),
      StatusIs(absl::StatusCode::kUnimplemented,
               "decoder.decoders[0]: unsupported type \"WordPiece\""));
}

}  // namespace
}  // namespace mmx::tokenizer
