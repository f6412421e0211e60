// Generation through the scheduler of an engine in this process, as `mmx-coord run` and the
// cluster serve it: concurrent greedy requests with chunked prefill and micro-batches give the
// official ids, and the logits a request asks for are the official ones.
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/local_engine.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/shards.h"
#include "tests/testing/status_matchers.h"

namespace mmx::engine {
namespace {

using ::mmx::testing::IsOk;

std::shared_ptr<coordinator::Request> Greedy(uint64_t id, std::vector<int32_t> prompt, bool return_logits = false) {
  coordinator::Request::Params p;
  p.prompt = std::move(prompt);
  p.max_tokens = 16;
  p.return_logits = return_logits;
  return std::make_shared<coordinator::Request>(id, p);
}

std::vector<int32_t> Wait(coordinator::Request& r) {
  std::vector<int32_t> ids;
  std::vector<coordinator::TokenEvent> events;
  while (r.Next(&events, absl::Seconds(60))) {
    for (const auto& e : events) ids.push_back(e.token_id);
  }
  EXPECT_THAT(r.final_status(), IsOk());
  return ids;
}

void ExpectGoldenGenerations(LocalEngine& engine) {
  auto golden = testing::ReadGoldenFile("decode.safetensors");
  const int64_t V = engine.config().vocab_size;
  const std::vector<std::string> names = {"p1", "p5", "p64", "p300", "p700"};
  std::vector<std::shared_ptr<coordinator::Request>> requests;
  for (size_t i = 0; i < names.size(); ++i) {
    requests.push_back(Greedy(i + 1, testing::GoldenPrompt(names[i]), /*return_logits=*/names[i] == "p64"));
    ASSERT_THAT(engine.scheduler().Submit(requests.back()), IsOk());
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const auto& want = golden.at(names[i] + ".generated_ids").i64;
    EXPECT_EQ(Wait(*requests[i]), std::vector<int32_t>(want.begin(), want.end())) << names[i];
    EXPECT_EQ(requests[i]->finish_reason(), "length");
  }
  // p64 kept every position's logits: 64 prefill rows, then 15 decode rows.
  const std::vector<float> logits = requests[2]->logits();
  ASSERT_EQ(logits.size(), static_cast<size_t>((64 + 15) * V));
  const auto& decode = golden.at("p64.decode_logits").f32;
  EXPECT_LE(testing::MaxAbsDiff(logits.data() + 64 * V, decode.data(), 15 * V), 5e-4f);
  const auto prefill_file = testing::ReadGoldenFile("prefill_logits.safetensors");
  const auto& prefill = prefill_file.at("p64").f32;
  EXPECT_LE(testing::MaxAbsDiff(logits.data(), prefill.data(), 64 * V), 5e-4f);
}

TEST(EngineGenerationTest, ConcurrentGreedyRequestsGiveTheOfficialIds) {
  LocalEngineOptions o;
  o.kv_dtype = DType::kF32;  // golden-exact
  o.model_dir = testing::GoldenDir();
  o.scheduler.prefill_chunk = 100;  // p300 and p700 prefill over several steps, beside decodes
  auto engine = LocalEngine::Start(std::move(o));
  ASSERT_TRUE(engine.ok()) << engine.status();
  ExpectGoldenGenerations(**engine);
}

TEST(EngineGenerationTest, DisaggregatedWithTwoMicroBatchesGivesTheOfficialIds) {
  auto shard = plan::ParseShardConfig(absl::StrCat("model: ", testing::GoldenDir(), R"(
workers:
  - {name: stage0, embedding: true, attention: [0, 4]}
  - {name: stage1, attention: [4, 8], lm_head: true}
  - {name: experts-a, experts: [{layers: [0, 8], ids: [0, 1, 2, 3, 4]}]}
  - {name: experts-b, experts: [{layers: [0, 8], ids: [3, 4, 5, 6, 7]}]}
)"));
  ASSERT_TRUE(shard.ok()) << shard.status();
  LocalEngineOptions o;
  o.kv_dtype = DType::kF32;  // golden-exact
  o.model_dir = testing::GoldenDir();
  o.shard = *shard;
  o.shard->kv_dtype = DType::kF32;
  o.scheduler.prefill_chunk = 64;
  o.scheduler.micro_batches = 2;
  o.scheduler.min_sequences_per_micro_batch = 1;
  auto engine = LocalEngine::Start(std::move(o));
  ASSERT_TRUE(engine.ok()) << engine.status();
  ExpectGoldenGenerations(**engine);
}

TEST(EngineGenerationTest, AWorkerThatCannotLoadFailsStartWithItsError) {
  // A GPU entry on a machine (or build) without that GPU: the worker's error, named.
  auto shard = plan::ParseShardConfig(testing::OneWorkerShard(testing::GoldenDir(), "gpu", "cuda:7"));
  ASSERT_TRUE(shard.ok()) << shard.status();
  LocalEngineOptions o;
  o.kv_dtype = DType::kF32;  // golden-exact
  o.model_dir = testing::GoldenDir();
  o.shard = *shard;
  o.shard->kv_dtype = DType::kF32;
  auto engine = LocalEngine::Start(std::move(o));
  ASSERT_FALSE(engine.ok());
  EXPECT_EQ(engine.status().code(), absl::StatusCode::kFailedPrecondition) << engine.status();
  EXPECT_NE(engine.status().message().find("worker 'gpu'"), std::string::npos) << engine.status();
}

}  // namespace
}  // namespace mmx::engine
