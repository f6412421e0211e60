#include "plan/shard_config.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/status_matchers.h"

namespace mmx::plan {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

model::ModelConfig TinyConfig() {
  auto c = model::ModelConfig::FromFile(::mmx::testing::GoldenDir());
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;  // 8 layers, 8 experts
}

constexpr char kDisaggregated[] = R"(
model: /models/tiny
workers:
  - name: stage0
    device: cpu
    embedding: true
    attention: [0, 4]
  - name: stage1
    attention: [4, 8]
    lm_head: true
  - name: experts-a
    experts:
      - layers: [0, 8]
        ids: [0, 1, 2, 3]
  - name: experts-b
    experts:
      - {layers: [0, 8], ids: all}
)";

TEST(ShardConfigTest, ParsesTheDocumentedSchema) {
  auto shard = ParseShardConfig(kDisaggregated);
  ASSERT_THAT(shard, IsOk());
  ASSERT_EQ(shard->workers.size(), 4u);
  EXPECT_EQ(shard->model, "/models/tiny");
  const WorkerShard* s0 = shard->Find("stage0");
  ASSERT_NE(s0, nullptr);
  EXPECT_TRUE(s0->embedding);
  EXPECT_FALSE(s0->lm_head);
  EXPECT_EQ(*s0->attention, (LayerRange{0, 4}));
  EXPECT_EQ(shard->Find("stage1")->device, "cpu");
  EXPECT_EQ(shard->Find("experts-a")->ExpertsOfLayer(3, 8), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(shard->Find("experts-b")->ExpertsOfLayer(7, 8).size(), 8u);
  EXPECT_TRUE(shard->Find("experts-b")->ExpertsOfLayer(8, 8).empty());
  EXPECT_THAT(ValidateShardConfig(*shard, TinyConfig()), IsOk());
}

TEST(ShardConfigTest, YamlRoundTrips) {
  auto shard = ParseShardConfig(kDisaggregated);
  ASSERT_THAT(shard, IsOk());
  auto again = ParseShardConfig(ShardConfigToYaml(*shard));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(ShardConfigToYaml(*again), ShardConfigToYaml(*shard));
  EXPECT_EQ(again->Find("experts-a")->experts[0].ids, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_TRUE(again->Find("experts-b")->experts[0].all);
}

TEST(ShardConfigTest, SyntaxErrorsNameTheLine) {
  EXPECT_THAT(ParseShardConfig("model: x\nworkers: [\n  - name: a\n", "bad.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("bad.yaml:")));
}

TEST(ShardConfigTest, RejectsUnknownKeysWrongTypesAndEmptyRanges) {
  EXPECT_THAT(ParseShardConfig("model: x\nworkers:\n  - name: a\n    atention: [0, 8]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown key 'atention'")));
  EXPECT_THAT(ParseShardConfig("model: x\nworkers:\n  - name: a\n    attention: [4, 2]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("begin < end")));
  EXPECT_THAT(ParseShardConfig("model: x\nworkers:\n  - name: a\n    embedding: maybe\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("true or false")));
  EXPECT_THAT(ParseShardConfig("model: x\nworkers:\n  - name: a\n    experts: [{layers: [0, 1], ids: some}]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'all'")));
  EXPECT_THAT(ParseShardConfig("workers:\n  - name: a\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("missing 'model'")));
  EXPECT_THAT(ParseShardConfig("model: x\nworkers: []\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("non-empty")));
  // Keys and values of shapes no field takes: one clear line each, never an abort.
  EXPECT_THAT(ParseShardConfig("? [a, b]\n: 1\nmodel: x\nworkers:\n  - name: a\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("top level: keys must be plain names")));
  EXPECT_THAT(ParseShardConfig("model: x\nworkers:\n  - name: a\n    {x: 1}: 2\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keys must be plain names")));
  EXPECT_THAT(ParseShardConfig("model: x\nworkers:\n  - name: a\n    device: {cuda: 0}\n", "s.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("s.yaml:4:")));
  EXPECT_THAT(ParseShardConfig("model: x\nexpert_dtype: [bf16]\nworkers:\n  - name: a\n", "s.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("s.yaml:2:")));
}

TEST(ShardConfigTest, ReportsEveryViolationOnItsOwnLine) {
  constexpr char kBroken[] = R"(
model: /m
workers:
  - name: a
    embedding: true
    attention: [0, 3]
    experts: [{layers: [0, 8], ids: [0, 1, 2, 3, 4, 5, 6]}]
  - name: a
    attention: [2, 6]
    embedding: true
  - name: c
    device: gpu0
    experts: [{layers: [0, 9], ids: [9]}]
)";
  auto shard = ParseShardConfig(kBroken);
  ASSERT_THAT(shard, IsOk());
  EXPECT_THAT(ValidateShardConfig(*shard, TinyConfig()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("worker name 'a' is used more than once"),
                             HasSubstr("embedding must be on exactly one worker, found 2 (a, a)"),
                             HasSubstr("lm_head must be on exactly one worker, found 0"),
                             HasSubstr("attention layers [2, 3) are on more than one worker"),
                             HasSubstr("attention layers [6, 8) are on no worker"),
                             HasSubstr("device 'gpu0' is not cpu or cuda:N"),
                             HasSubstr("go past the model's 8 layers"),
                             HasSubstr("expert id 9 is outside [0, 8)"),
                             HasSubstr("layer 0: experts [7] are on no worker"))));
}

TEST(ShardConfigTest, GapBetweenStagesIsReported) {
  auto shard = ParseShardConfig(R"(
model: /m
workers:
  - {name: s0, embedding: true, attention: [0, 3], experts: [{layers: [0, 8], ids: all}]}
  - {name: s1, attention: [5, 8], lm_head: true}
)");
  ASSERT_THAT(shard, IsOk());
  EXPECT_THAT(ValidateShardConfig(*shard, TinyConfig()),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("attention layers [3, 5) are on no worker")));
}

// Two attention groups over one shared pair of expert hosts.
constexpr char kTwoGroups[] = R"(
model: /m
serving: {steps_in_flight: 2}
workers:
  - {name: a0, group: a, embedding: true, attention: [0, 4]}
  - {name: a1, group: a, attention: [4, 8], lm_head: true}
  - {name: b, group: b, embedding: true, attention: [0, 8], lm_head: true}
  - {name: experts-x, experts: [{layers: [0, 8], ids: [0, 1, 2, 3]}]}
  - {name: experts-y, experts: [{layers: [0, 8], ids: [4, 5, 6, 7]}]}
)";

TEST(ShardConfigTest, AttentionGroupsEachCoverTheModelOverSharedExperts) {
  auto shard = ParseShardConfig(kTwoGroups);
  ASSERT_THAT(shard, IsOk());
  EXPECT_EQ(AttentionGroups(*shard), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(shard->Find("a1")->group, "a");
  EXPECT_EQ(shard->Find("experts-x")->group, "");
  EXPECT_EQ(shard->steps_in_flight, 2);
  EXPECT_THAT(ValidateShardConfig(*shard, TinyConfig()), IsOk());
  auto again = ParseShardConfig(ShardConfigToYaml(*shard));
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(ShardConfigToYaml(*again), ShardConfigToYaml(*shard));
  EXPECT_EQ(again->Find("b")->group, "b");
  EXPECT_EQ(again->steps_in_flight, 2);
  // Without groups: the one unnamed group.
  EXPECT_EQ(AttentionGroups(*ParseShardConfig(kDisaggregated)), (std::vector<std::string>{""}));
}

TEST(ShardConfigTest, EveryGroupViolationIsReportedNamingItsGroup) {
  auto shard = ParseShardConfig(R"(
model: /m
workers:
  - {name: a0, group: a, embedding: true, attention: [0, 4]}
  - {name: a1, group: a, attention: [3, 6], lm_head: true, embedding: true}
  - {name: b, group: b, attention: [0, 8]}
  - {name: experts, group: a, experts: [{layers: [0, 8], ids: all}]}
)");
  ASSERT_THAT(shard, IsOk());
  EXPECT_THAT(ValidateShardConfig(*shard, TinyConfig()),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("group 'a': embedding must be on exactly one worker, found 2 (a0, a1)"),
                             HasSubstr("group 'a': attention layers [3, 4) are on more than one worker"),
                             HasSubstr("group 'a': attention layers [6, 8) are on no worker"),
                             HasSubstr("group 'b': embedding must be on exactly one worker, found 0"),
                             HasSubstr("group 'b': lm_head must be on exactly one worker, found 0"),
                             HasSubstr("worker 'experts': an expert-only worker has no group"))));
  EXPECT_THAT(ParseShardConfig("model: x\nworkers:\n  - {name: a, group: ''}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("group: expected a name")));
  EXPECT_THAT(ParseShardConfig("model: x\nserving: {steps_in_flight: -1}\nworkers:\n  - {name: a}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("steps_in_flight")));
}

TEST(ShardConfigTest, KvDtypeIsBf16UnlessTheServingSectionSaysFp32AndSurvivesARoundTrip) {
  auto plain = ParseShardConfig(kTwoGroups);
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(plain->kv_dtype, DType::kBF16);  // as the model is served
  EXPECT_EQ(ShardConfigToYaml(*plain).find("kv_dtype"), std::string::npos);  // the default is not written
  auto fp32 = ParseShardConfig("model: /m\nserving: {kv_dtype: fp32, steps_in_flight: 3}\nworkers:\n  - {name: a}\n");
  ASSERT_THAT(fp32, IsOk());
  EXPECT_EQ(fp32->kv_dtype, DType::kF32);
  auto again = ParseShardConfig(ShardConfigToYaml(*fp32));  // what the coordinator sends its workers
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->kv_dtype, DType::kF32);
  EXPECT_EQ(again->steps_in_flight, 3);
  EXPECT_THAT(ParseShardConfig("model: x\nserving: {kv_dtype: fp16}\nworkers:\n  - {name: a}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(":2: "), HasSubstr("serving.kv_dtype 'fp16' is neither bf16"))));
}

TEST(ShardConfigTest, WireDtypeIsFp32UnlessTheServingSectionSaysBf16AndSurvivesARoundTrip) {
  auto plain = ParseShardConfig(kTwoGroups);
  ASSERT_THAT(plain, IsOk());
  EXPECT_EQ(plain->wire_dtype, DType::kF32);  // golden-exact
  EXPECT_EQ(ShardConfigToYaml(*plain).find("wire_dtype"), std::string::npos);
  auto bf16 = ParseShardConfig("model: /m\nserving: {wire_dtype: bf16}\nworkers:\n  - {name: a}\n");
  ASSERT_THAT(bf16, IsOk());
  EXPECT_EQ(bf16->wire_dtype, DType::kBF16);
  EXPECT_EQ(bf16->kv_dtype, DType::kBF16);
  auto again = ParseShardConfig(ShardConfigToYaml(*bf16));  // what the coordinator sends its workers
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(again->wire_dtype, DType::kBF16);
  EXPECT_THAT(ParseShardConfig("model: x\nserving: {wire_dtype: [bf16]}\nworkers:\n  - {name: a}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(":2: "), HasSubstr("serving.wire_dtype '?' is neither fp32"))));
}

}  // namespace
}  // namespace mmx::plan
