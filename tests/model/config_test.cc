#include "model/config.h"

#include <fstream>
#include <functional>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace mmx::model {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kGoldenDir = testing::GoldenDir();

using ::mmx::testing::ReadFile;

Json GoldenJson() { return Json::parse(ReadFile(kGoldenDir + "/config.json")); }

// The golden config with one edit applied, parsed.
absl::StatusOr<ModelConfig> ParseEdited(const std::function<void(Json&)>& edit) {
  Json j = GoldenJson();
  edit(j);
  return ModelConfig::FromJson(j.dump());
}

TEST(ConfigTest, ParsesGoldenTinyConfig) {
  absl::StatusOr<ModelConfig> c = ModelConfig::FromFile(kGoldenDir + "/config.json");
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->architecture, "MiniMaxText01ForCausalLM");
  EXPECT_EQ(c->model_type, "minimax_text_01");
  EXPECT_EQ(c->hidden_size, 96);
  EXPECT_EQ(c->num_hidden_layers, 8);
  EXPECT_EQ(c->num_attention_heads, 4);
  EXPECT_EQ(c->num_key_value_heads, 2);
  EXPECT_EQ(c->head_dim, 64);
  EXPECT_EQ(c->rotary_dim, 32);
  EXPECT_EQ(c->rope_theta, 1e7);
  EXPECT_EQ(c->max_position_embeddings, 10240000);
  EXPECT_EQ(c->intermediate_size, 144);
  EXPECT_EQ(c->num_local_experts, 8);
  EXPECT_EQ(c->num_experts_per_tok, 2);
  EXPECT_EQ(c->vocab_size, 512);
  const auto L = AttentionKind::kLightning, S = AttentionKind::kSoftmax;
  EXPECT_THAT(c->attn_type_list, ElementsAre(L, L, L, S, L, L, L, S));
  EXPECT_TRUE(c->is_softmax(3));
  EXPECT_FALSE(c->is_softmax(4));
  EXPECT_EQ(c->linear_attn_alpha, 3.5565588200778455);
  EXPECT_EQ(c->full_attn_alpha, 3.5565588200778455);
  EXPECT_EQ(c->mlp_alpha, 3.5565588200778455);
  EXPECT_EQ(c->linear_attn_beta, 1.0);
  EXPECT_EQ(c->full_attn_beta, 1.0);
  EXPECT_EQ(c->mlp_beta, 1.0);
  EXPECT_TRUE(c->postnorm);
  EXPECT_EQ(c->rms_norm_eps, 1e-5);
  EXPECT_FALSE(c->tie_word_embeddings);
  EXPECT_EQ(c->lightning_block_size, 256);
  EXPECT_TRUE(c->eos_token_ids.empty());
  EXPECT_FALSE(c->bos_token_id.has_value());
  EXPECT_EQ(c->q_width(), 256);
  EXPECT_EQ(c->kv_width(), 128);
}

TEST(ConfigTest, FromFileAcceptsTheCheckpointDirectory) {
  absl::StatusOr<ModelConfig> c = ModelConfig::FromFile(kGoldenDir);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->hidden_size, 96);
}

TEST(ConfigTest, FromFileReportsMissingFileAsNotFound) {
  EXPECT_THAT(ModelConfig::FromFile("/nonexistent/dir/config.json"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/dir/config.json")));
}

TEST(ConfigTest, HeadDimDefaultsToHiddenOverHeadsAndRotaryDimToHeadDim) {
  auto c = ParseEdited([](Json& j) {
    j.erase("head_dim");
    j.erase("rotary_dim");
  });
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->head_dim, 24);  // 96 / 4
  EXPECT_EQ(c->rotary_dim, 24);
}

TEST(ConfigTest, NullHeadDimMeansTheDefault) {
  auto c = ParseEdited([](Json& j) {
    j["head_dim"] = nullptr;
    j["rotary_dim"] = 8;
  });
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->head_dim, 24);
}

TEST(ConfigTest, RefusesAbsentHeadDimWhenHiddenIsNotDivisibleByHeads) {
  auto c = ParseEdited([](Json& j) {
    j.erase("head_dim");
    j["hidden_size"] = 98;
  });
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument,
                          AllOf(HasSubstr("'head_dim'"), HasSubstr("set head_dim"))));
}

TEST(ConfigTest, ReadsOptionalBlockKey) {
  auto c = ParseEdited([](Json& j) { j["block"] = 64; });
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(c->lightning_block_size, 64);
}

TEST(ConfigTest, EosTokenIdMayBeAnIdOrAList) {
  auto one = ParseEdited([](Json& j) { j["eos_token_id"] = 200020; });
  ASSERT_THAT(one, IsOk());
  EXPECT_THAT(one->eos_token_ids, ElementsAre(200020));
  auto list = ParseEdited([](Json& j) { j["eos_token_id"] = {200020, 7}; });
  ASSERT_THAT(list, IsOk());
  EXPECT_THAT(list->eos_token_ids, ElementsAre(200020, 7));
  EXPECT_THAT(ParseEdited([](Json& j) { j["eos_token_id"] = "eos"; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'eos_token_id'")));
}

TEST(ConfigTest, RefusesOtherArchitecturesAndListsTheSupportedOne) {
  auto c = ParseEdited([](Json& j) { j["architectures"] = {"MiniMaxM1ForCausalLM"}; });
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument,
                          AllOf(HasSubstr("'architectures'"), HasSubstr("MiniMaxM1ForCausalLM"),
                                HasSubstr("supports only [\"MiniMaxText01ForCausalLM\"]"))));
}

TEST(ConfigTest, RefusesArchitecturesThatIsNotAList) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["architectures"] = "MiniMaxText01ForCausalLM"; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'architectures'"), HasSubstr("list of strings"))));
}

TEST(ConfigTest, RefusesSharedExpert) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["shared_intermediate_size"] = 1; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'shared_intermediate_size' is 1"),
                             HasSubstr("shared expert"))));
}

TEST(ConfigTest, RefusesAttnTypeListOfWrongLength) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["attn_type_list"] = {0, 0, 0, 1}; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'attn_type_list' has 4 entries"),
                             HasSubstr("num_hidden_layers is 8"))));
}

TEST(ConfigTest, RefusesAttnTypeOtherThanZeroOrOne) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["attn_type_list"][5] = 2; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'attn_type_list[5]' is 2"), HasSubstr("0 (lightning)"))));
  EXPECT_THAT(ParseEdited([](Json& j) { j["attn_type_list"][0] = true; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'attn_type_list[0]'")));
}

TEST(ConfigTest, RefusesTopKAboveNumberOfExperts) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["num_experts_per_tok"] = 9; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'num_experts_per_tok' is 9"),
                             HasSubstr("num_local_experts is 8"))));
}

TEST(ConfigTest, RefusesTopKBelowOne) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["num_experts_per_tok"] = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'num_experts_per_tok' must be at least 1, got 0")));
}

TEST(ConfigTest, RefusesHeadsNotDivisibleByKvHeads) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["num_key_value_heads"] = 3; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'num_key_value_heads' is 3"),
                             HasSubstr("not a multiple"))));
}

TEST(ConfigTest, RefusesOddRotaryDim) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["rotary_dim"] = 33; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'rotary_dim' is 33"), HasSubstr("even"))));
}

TEST(ConfigTest, RefusesRotaryDimAboveHeadDim) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["rotary_dim"] = 66; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'rotary_dim' is 66"), HasSubstr("head_dim is only 64"))));
}

TEST(ConfigTest, RefusesActivationOtherThanSilu) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["hidden_act"] = "gelu"; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'hidden_act' is \"gelu\""), HasSubstr("\"silu\""))));
}

TEST(ConfigTest, RefusesSlidingWindow) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["sliding_window"] = 4096; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'sliding_window' is 4096"), HasSubstr("null"))));
}

TEST(ConfigTest, RefusesTiedEmbeddings) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["tie_word_embeddings"] = true; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'tie_word_embeddings' is true"), HasSubstr("lm_head"))));
}

TEST(ConfigTest, RefusesMissingRequiredKeys) {
  for (const char* key : {"hidden_size", "num_hidden_layers", "num_attention_heads",
                          "num_key_value_heads", "intermediate_size", "num_local_experts",
                          "num_experts_per_tok", "vocab_size", "attn_type_list", "postnorm",
                          "rms_norm_eps", "rope_theta", "layernorm_mlp_alpha", "architectures"}) {
    SCOPED_TRACE(key);
    EXPECT_THAT(ParseEdited([&](Json& j) { j.erase(key); }),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         HasSubstr(std::string("missing required key '") + key + "'")));
  }
}

TEST(ConfigTest, RefusesRequiredKeyThatIsNull) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["vocab_size"] = nullptr; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("missing required key 'vocab_size' (it is null)")));
}

TEST(ConfigTest, RefusesWrongJsonTypes) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["hidden_size"] = "96"; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'hidden_size' must be an integer, got \"96\"")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["hidden_size"] = 96.5; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'hidden_size' must be an integer, got 96.5")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["postnorm"] = 1; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'postnorm' must be true or false, got 1")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["rms_norm_eps"] = "1e-5"; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'rms_norm_eps' must be a number")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["attn_type_list"] = "0,0"; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'attn_type_list'")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["use_cache"] = "yes"; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'use_cache'")));
}

TEST(ConfigTest, RefusesNonPositiveSizes) {
  EXPECT_THAT(ParseEdited([](Json& j) { j["hidden_size"] = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'hidden_size' must be at least 1, got 0")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["vocab_size"] = -5; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'vocab_size' must be at least 1, got -5")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["rms_norm_eps"] = 0; }),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'rms_norm_eps'")));
  EXPECT_THAT(ParseEdited([](Json& j) { j["num_hidden_layers"] = uint64_t{1} << 40; }),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("'num_hidden_layers' must be at most")));
}

TEST(ConfigTest, RefusesMalformedJsonWithThePosition) {
  std::string text = ReadFile(kGoldenDir + "/config.json");
  text.replace(text.find("\"hidden_size\": 96,"), 18, "\"hidden_size\": 96,,");
  EXPECT_THAT(ModelConfig::FromJson(text, "x/config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("x/config.json: malformed JSON"), HasSubstr("line 24"))));
}

TEST(ConfigTest, RefusesANumberBeyondDoubleRange) {
  EXPECT_THAT(ModelConfig::FromJson("{\"hidden_size\": 1E400}", "x/config.json"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("x/config.json: malformed JSON"), HasSubstr("1E400"))));
}

TEST(ConfigTest, RefusesJsonThatIsNotAnObject) {
  EXPECT_THAT(ModelConfig::FromJson("[1, 2]"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expected a JSON object")));
}

TEST(ConfigTest, ToJsonWritesTheOfficialLayoutKeyForKey) {
  absl::StatusOr<ModelConfig> c = ModelConfig::FromFile(kGoldenDir);
  ASSERT_THAT(c, IsOk());
  EXPECT_EQ(Json::parse(c->ToJson()), GoldenJson());
}

TEST(ConfigTest, ToJsonRoundTripsEveryField) {
  auto c = ParseEdited([](Json& j) {
    j["block"] = 128;
    j["eos_token_id"] = {5, 6};
    j["bos_token_id"] = 1;
    j["rope_theta"] = 12345.5;
    j["postnorm"] = false;
    j["layernorm_mlp_beta"] = 0.25;
  });
  ASSERT_THAT(c, IsOk());
  absl::StatusOr<ModelConfig> back = ModelConfig::FromJson(c->ToJson());
  ASSERT_THAT(back, IsOk());
  EXPECT_EQ(*back, *c);
}

}  // namespace
}  // namespace mmx::model
