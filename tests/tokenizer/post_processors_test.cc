#include "model/tokenizer/post_processors.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/tokenizer/tokenizer_test_util.h"

namespace mmx::tokenizer {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr int kA = 0, kB = 1, kBos = 10, kEos = 11;

TestJson Special(const std::string& name) {
  return {{"SpecialToken", {{"id", name}, {"type_id", 0}}}};
}
TestJson Sequence(const std::string& name, int type_id) {
  return {{"Sequence", {{"id", name}, {"type_id", type_id}}}};
}

TestJson TemplateJson(bool with_pair) {
  TestJson processor = {{"type", "TemplateProcessing"},
                        {"single", {Special("<s>"), Sequence("A", 0), Special("</s>")}},
                        {"special_tokens",
                         {{"<s>", {{"id", "<s>"}, {"ids", {kBos}}, {"tokens", {"<s>"}}}},
                          {"</s>", {{"id", "</s>"}, {"ids", {kEos}}, {"tokens", {"</s>"}}}}}}};
  if (with_pair) {
    processor["pair"] = {Special("<s>"), Sequence("A", 0), Special("</s>"), Sequence("B", 1),
                         Special("</s>")};
  }
  return processor;
}

std::unique_ptr<Tokenizer> WithProcessor(const TestJson& processor) {
  TestJson json = TokenizerWith(BpeModel({"a", "b"}, {}));
  json["added_tokens"] = {Added(kBos, "<s>"), Added(kEos, "</s>")};
  json["post_processor"] = processor;
  return Build(json);
}

TEST(PostProcessorsTest, TemplateSingleAndPair) {
  auto tokenizer = WithProcessor(TemplateJson(/*with_pair=*/true));
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(*tokenizer->Encode("ab"), ElementsAre(kBos, kA, kB, kEos));
  EXPECT_THAT(*tokenizer->Encode("ab", /*add_special_tokens=*/false), ElementsAre(kA, kB));
  absl::StatusOr<std::vector<int32_t>> pair = tokenizer->EncodePair("a", "b");
  ASSERT_THAT(pair, IsOk());
  EXPECT_THAT(*pair, ElementsAre(kBos, kA, kEos, kB, kEos));
  pair = tokenizer->EncodePair("a", "b", /*add_special_tokens=*/false);
  ASSERT_THAT(pair, IsOk());
  EXPECT_THAT(*pair, ElementsAre(kA, kB));
  // Text that spells a special token is that token, wherever it comes from.
  EXPECT_THAT(*tokenizer->Encode("<s>a"), ElementsAre(kBos, kBos, kA, kEos));
}

TEST(PostProcessorsTest, TemplateWithoutPairRefusesPairs) {
  auto tokenizer = WithProcessor(TemplateJson(/*with_pair=*/false));
  ASSERT_TRUE(tokenizer);
  EXPECT_THAT(tokenizer->EncodePair("a", "b"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("no \"pair\" template")));
}

TEST(PostProcessorsTest, SequenceAndByteLevel) {
  auto byte_level_only = WithProcessor({{"type", "ByteLevel"}, {"trim_offsets", false}});
  auto sequence = WithProcessor(
      {{"type", "Sequence"}, {"processors", {{{"type", "ByteLevel"}}, TemplateJson(true)}}});
  ASSERT_TRUE(byte_level_only && sequence);
  EXPECT_THAT(*byte_level_only->Encode("ab"), ElementsAre(kA, kB));
  EXPECT_THAT(*sequence->Encode("ab"), ElementsAre(kBos, kA, kB, kEos));
}

TEST(PostProcessorsTest, BertAndRoberta) {
  const TestJson cls_sep = {{"cls", {"<s>", kBos}}, {"sep", {"</s>", kEos}}};
  TestJson bert = cls_sep, roberta = cls_sep;
  bert["type"] = "BertProcessing";
  roberta["type"] = "RobertaProcessing";
  auto b = WithProcessor(bert);
  auto r = WithProcessor(roberta);
  ASSERT_TRUE(b && r);
  EXPECT_THAT(*b->Encode("a"), ElementsAre(kBos, kA, kEos));
  EXPECT_THAT(*b->EncodePair("a", "b"), ElementsAre(kBos, kA, kEos, kB, kEos));
  EXPECT_THAT(*r->EncodePair("a", "b"), ElementsAre(kBos, kA, kEos, kEos, kB, kEos));
}

TEST(PostProcessorsTest, TemplateNamingAnUnknownSpecialTokenIsRejected) {
  TestJson processor = TemplateJson(false);
  processor["single"][2] = Special("<eos>");
  EXPECT_THAT(ParsePostProcessor(processor, "post_processor"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "post_processor.single[2].SpecialToken.id: \"<eos>\" is not in "
                       "post_processor.special_tokens"));
}

}  // namespace
}  // namespace mmx::tokenizer
