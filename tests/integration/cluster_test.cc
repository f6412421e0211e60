// Integration: real mmx-coord and mmx-worker processes talking gRPC and UCX over loopback, on
// the golden tiny-a checkpoint. Three layouts (one worker; two pipeline stages with co-located
// experts; two attention stages and two expert hosts with overlapping replicas) must reproduce
// the official greedy ids exactly and their log-probabilities within the golden tolerance.
#include <cmath>
#include <fstream>
#include <map>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "engine/local_engine.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"
#include "tests/testing/shards.h"
#include "tests/testing/golden_reader.h"
#include "tests/testing/local_cluster.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

const std::string kModel = testing::GoldenDir();

std::string SingleWorker() { return testing::OneWorkerShard(kModel); }

std::string TwoStages() {
  return absl::StrCat("model: ", kModel, R"(
workers:
  - {name: stage0, embedding: true, attention: [0, 5], experts: [{layers: [0, 5], ids: all}]}
  - {name: stage1, attention: [5, 8], lm_head: true, experts: [{layers: [5, 8], ids: all}]}
)");
}

std::string Disaggregated() { return testing::DisaggregatedShard(kModel); }

struct GoldenCase {
  std::vector<int32_t> prompt;
  std::vector<int32_t> ids;
  std::vector<float> logprobs;  // of each golden id under the official logits
};

// log-softmax of `row` at `id`, in double.
float LogProb(const float* row, int64_t vocab, int id) {
  double max = row[0];
  for (int64_t i = 1; i < vocab; ++i) max = std::max<double>(max, row[i]);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(row[i] - max);
  return static_cast<float>(row[id] - max - std::log(sum));
}

GoldenCase Golden(const std::string& name) {
  std::ifstream in(kModel + "/golden/prompts.json");
  auto prompts = nlohmann::json::parse(in);
  auto prefill = testing::ReadGolden(kModel + "/golden/prefill_logits.safetensors");
  auto decode = testing::ReadGolden(kModel + "/golden/decode.safetensors");
  GoldenCase g;
  g.prompt = prompts["prompts"][name].get<std::vector<int32_t>>();
  const auto& ids = decode.at(name + ".generated_ids").i64;
  g.ids.assign(ids.begin(), ids.end());
  const int64_t V = 512;
  const std::vector<float>& pre = prefill.at(name).f32;
  g.logprobs.push_back(LogProb(pre.data() + pre.size() - V, V, g.ids[0]));
  const std::vector<float>& dec = decode.at(name + ".decode_logits").f32;
  for (size_t i = 1; i < g.ids.size(); ++i) g.logprobs.push_back(LogProb(dec.data() + (i - 1) * V, V, g.ids[i]));
  return g;
}

void ExpectGolden(v1::Inference::Stub& stub, const std::string& name) {
  GoldenCase g = Golden(name);
  auto out = testing::GenerateOnce(stub, g.prompt, static_cast<int>(g.ids.size()), 1);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->tokens, g.ids) << name;
  EXPECT_EQ(out->finish_reason, "length");
  ASSERT_EQ(out->logprobs.size(), g.logprobs.size());
  for (size_t i = 0; i < g.logprobs.size(); ++i) EXPECT_NEAR(out->logprobs[i], g.logprobs[i], 5e-4) << name << " " << i;
}

// The golden prompts every layout test serves.
void ExpectGoldenSet(v1::Inference::Stub& stub) {
  for (const char* name : {"p1", "p5", "p64", "p300"}) ExpectGolden(stub, name);
}

struct Layout {
  std::string name;
  std::string yaml;
  bool workers_first;
};

class ClusterGoldenTest : public ::testing::TestWithParam<Layout> {};

TEST_P(ClusterGoldenTest, ReproducesGoldenIdsAndLogprobs) {
  auto cluster = testing::LocalCluster::Start(GetParam().yaml, GetParam().workers_first);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  ExpectGoldenSet((*cluster)->stub());
}

INSTANTIATE_TEST_SUITE_P(Layouts, ClusterGoldenTest,
                         ::testing::Values(Layout{"SingleWorker", SingleWorker(), false},
                                           Layout{"TwoPipelineStages", TwoStages(), false},
                                           Layout{"DisaggregatedWorkersFirst", Disaggregated(), true}),
                         [](const auto& info) { return info.param.name; });

// Workers whose waiting threads drive UCX themselves (--busy-poll-us; transport/ucx_worker.h:
// the drive role, hand-back and lingering) serve the golden set like sleeping ones.
TEST(ClusterTest, DisaggregatedWorkersThatBusyPollReproduceGolden) {
  auto cluster = testing::LocalCluster::StartSecured(Disaggregated(), {}, {"--busy-poll-us", "50"},
                                                     grpc::InsecureChannelCredentials());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  ExpectGoldenSet((*cluster)->stub());
}

// Data-parallel attention over a shared expert pool: the golden set, sent at once, lands in both
// groups (each admitted where state memory is most free) and every request gives the official
// ids and log-probabilities, whichever group ran it.
TEST(ClusterTest, TwoAttentionGroupsSharingTwoExpertHostsReproduceGoldenInBothGroups) {
  auto cluster = testing::LocalCluster::Start(testing::TwoGroupsShard(kModel));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  std::vector<std::thread> requests;
  // The longest first: it is still running when the others are admitted.
  for (const std::string name : {"p300", "p64", "p5", "p1"}) {
    requests.emplace_back([&cluster, name] { ExpectGolden((*cluster)->stub(), name); });
  }
  for (std::thread& t : requests) t.join();
  auto status = (*cluster)->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  // A worker's step time is reported once it ran a step: each group's head did.
  const auto& worker_steps = status->stats().worker_step_p50_s();
  EXPECT_TRUE(worker_steps.contains("group-a")) << "group a ran no step";
  EXPECT_TRUE(worker_steps.contains("group-b")) << "group b ran no step";
  std::map<std::string, std::string> group_of;
  for (const auto& w : status->workers()) group_of[w.name()] = w.group();
  EXPECT_EQ(group_of["group-a"], "a");
  EXPECT_EQ(group_of["group-b"], "b");
  EXPECT_EQ(group_of["experts-a"], "");
  // One step in flight per group, on workers that share this machine's cores.
  EXPECT_EQ(status->stats().steps_in_flight_limit(), 2);
}

TEST(ClusterTest, PlansFromLiveWorkersAndReproducesGolden) {
  auto cluster = testing::LocalCluster::StartPlanned(kModel, {"alpha", "beta", "gamma"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  EXPECT_THAT((*cluster)->Log("coordinator"), HasSubstr("planned from 3 live workers; shard config:"));
  auto status = (*cluster)->Status();
  ASSERT_TRUE(status.ok());
  EXPECT_EQ(status->workers_size(), 3);
  ExpectGolden((*cluster)->stub(), "p5");
  ExpectGolden((*cluster)->stub(), "p64");
}

// Greedy ids of `prompt` from the single-process engine with `o`, and every position's logits.
struct LocalRun {
  std::vector<int32_t> ids;
  std::vector<float> logits;
  int64_t vocab = 0;
};
LocalRun RunLocally(engine::LocalEngineOptions o, const std::vector<int32_t>& prompt, int max_tokens) {
  LocalRun run;
  o.model_dir = kModel;
  auto local = engine::LocalEngine::Start(o);
  EXPECT_TRUE(local.ok()) << local.status();
  if (!local.ok()) return run;
  coordinator::Request::Params params;
  params.prompt = prompt;
  params.max_tokens = max_tokens;
  params.return_logits = true;
  auto request = std::make_shared<coordinator::Request>(1, params);
  EXPECT_TRUE((*local)->scheduler().Submit(request).ok());
  std::vector<coordinator::TokenEvent> events;
  while (request->Next(&events, absl::Seconds(60))) {
    for (const auto& e : events) run.ids.push_back(e.token_id);
  }
  EXPECT_TRUE(request->final_status().ok()) << request->final_status();
  run.logits = request->logits();
  run.vocab = (*local)->config().vocab_size;
  return run;
}

// The cluster's greedy ids and log-probabilities of `g` equal the local run's (within the golden
// tolerance for the log-probabilities).
void ExpectClusterEqualsLocal(testing::LocalCluster& cluster, const GoldenCase& g, const LocalRun& local) {
  auto out = testing::GenerateOnce(cluster.stub(), g.prompt, static_cast<int>(local.ids.size()), 1);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->tokens, local.ids);
  ASSERT_EQ(out->logprobs.size(), local.ids.size());
  const int64_t P = static_cast<int64_t>(g.prompt.size());
  for (size_t i = 0; i < local.ids.size(); ++i) {
    const float* row = local.logits.data() + (P - 1 + static_cast<int64_t>(i)) * local.vocab;
    EXPECT_NEAR(out->logprobs[i], LogProb(row, local.vocab, local.ids[i]), 5e-4) << i;
  }
}

TEST(ClusterTest, Int8ExpertsInTheShardConfigMatchTheLocalInt8Engine) {
  // `expert_dtype: int8` reaches the workers in the assigned shard yaml; the expert hosts
  // quantize at load. The cluster must then give what the single-process engine gives with
  // int8 experts: the same greedy ids, log-probabilities within the golden tolerance.
  auto cluster = testing::LocalCluster::Start(absl::StrCat("expert_dtype: int8\n", Disaggregated()));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  engine::LocalEngineOptions o;
  o.expert_dtype = "int8";
  o.kv_dtype = DType::kF32;  // as the test cluster serves
  const GoldenCase g = Golden("p64");
  ExpectClusterEqualsLocal(**cluster, g, RunLocally(o, g.prompt, 16));
  EXPECT_THAT((*cluster)->Log("stage0"), HasSubstr("KV cache fp32"));      // an attention stage
  EXPECT_THAT((*cluster)->Log("experts-a"), Not(HasSubstr("KV cache")));  // an expert host holds none
}

TEST(ClusterTest, ABf16KvCacheReachesTheWorkerAndMatchesTheLocalBf16Engine) {
  // `serve --kv-dtype bf16` goes to the worker in the assigned shard yaml; it keeps its
  // sequences' KV in bf16 (and says so), and serves what the local engine does with a bf16 cache.
  auto cluster = testing::LocalCluster::StartWith(testing::OneWorkerShard(kModel), {"--kv-dtype", "bf16"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  EXPECT_THAT((*cluster)->Log("all"), HasSubstr("KV cache bf16"));
  engine::LocalEngineOptions o;
  o.kv_dtype = DType::kBF16;
  const GoldenCase g = Golden("p300");
  ExpectClusterEqualsLocal(**cluster, g, RunLocally(o, g.prompt, 16));
}

TEST(ClusterTest, ABf16WireReachesTheWorkersAndMatchesTheLocalEngineWithABf16Wire) {
  // `serve --wire-dtype bf16` goes to the workers in the assigned shard yaml; the stages send
  // their activations as bf16 (and say so), the expert hosts answer in kind, and the cluster
  // serves what the local engine does with the same layout and wire over its in-process
  // transport (the fp32 wire's log-probabilities differ from these by far more than 5e-4).
  auto cluster = testing::LocalCluster::StartWith(Disaggregated(), {"--wire-dtype", "bf16"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  EXPECT_THAT((*cluster)->Log("stage0"), HasSubstr("activations out bf16"));
  absl::StatusOr<plan::ShardConfig> shard = plan::ParseShardConfig(Disaggregated());
  ASSERT_TRUE(shard.ok()) << shard.status();
  engine::LocalEngineOptions o;
  o.shard = *shard;
  o.shard->kv_dtype = DType::kF32;  // as the test cluster serves
  o.shard->wire_dtype = DType::kBF16;
  const GoldenCase g = Golden("p64");
  ExpectClusterEqualsLocal(**cluster, g, RunLocally(o, g.prompt, 16));
}

TEST(ClusterTest, EightConcurrentRequestsGiveWhatEachGivesAlone) {
  auto cluster = testing::LocalCluster::Start(Disaggregated());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok());
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 8; ++i) {
    std::vector<int32_t> p;
    for (int t = 0; t < 3 + 37 * i; ++t) p.push_back((t * 131 + i * 17) % 512);
    prompts.push_back(p);
  }
  std::vector<std::vector<int32_t>> alone;
  for (const auto& p : prompts) {
    auto out = testing::GenerateOnce((*cluster)->stub(), p, 12);
    ASSERT_TRUE(out.ok()) << out.status();
    alone.push_back(out->tokens);
  }
  std::vector<std::future<absl::StatusOr<testing::Generation>>> together;
  for (const auto& p : prompts) {
    together.push_back(std::async(std::launch::async, [&, p] { return testing::GenerateOnce((*cluster)->stub(), p, 12); }));
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto out = together[i].get();
    ASSERT_TRUE(out.ok()) << out.status();
    EXPECT_EQ(out->tokens, alone[i]) << "prompt " << i;
  }
}

TEST(ClusterTest, WithoutFailoverAKilledWorkerFailsInFlightRequestsFastAndRejoins) {
  // A generation long enough to be running when the worker dies; failover off (its own test is
  // failover_test.cc): the request ends at once.
  auto cluster =
      testing::LocalCluster::StartWith(Disaggregated(), {"--max-tokens", "200000", "--failover-timeout", "0"});
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok());
  testing::LocalCluster& c = **cluster;

  // A long generation; once its first tokens have streamed (it is in flight), kill -9 an expert
  // host.
  grpc::ClientContext context;
  v1::GenerateRequest request;
  for (int32_t id : {1, 2, 3}) request.add_prompt_token_ids(id);
  request.mutable_sampling()->set_max_tokens(100000);
  auto reader = c.stub().Generate(&context, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response)) << c.Log("coordinator");
  ASSERT_GT(response.token_ids_size(), 0);
  const auto killed_at = std::chrono::steady_clock::now();
  c.KillWorker("experts-b");
  while (reader->Read(&response)) {
  }
  const grpc::Status result = reader->Finish();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed_at).count();
  EXPECT_EQ(result.error_code(), grpc::StatusCode::UNAVAILABLE) << result.error_message();
  // Behaviour, not speed: a failure noticed at once, not at the step timeout (60 s).
  EXPECT_LT(seconds, 30.0);

  auto status = c.Status();
  ASSERT_TRUE(status.ok()) << status.status();  // the coordinator is still up
  EXPECT_FALSE(status->ready());
  bool saw_lost = false;
  for (const auto& w : status->workers()) saw_lost |= w.name() == "experts-b" && w.state() == v1::WORKER_STATE_LOST;
  EXPECT_TRUE(saw_lost);
  auto refused = testing::GenerateOnce(c.stub(), {1, 2, 3}, 4);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("experts-b"));

  // The same name rejoins, reloads, and serving resumes with the right tokens.
  ASSERT_TRUE(c.StartWorker("experts-b").ok());
  ASSERT_TRUE(c.WaitReady(absl::Seconds(60)).ok()) << c.Log("coordinator");
  ExpectGolden(c.stub(), "p5");
  if (::testing::Test::HasFailure()) {
    for (const char* name : {"coordinator", "stage0", "stage1", "experts-a", "experts-b"}) {
      ADD_FAILURE() << "log of " << name << ":\n" << c.Log(name);
    }
  }
}

}  // namespace
}  // namespace mmx
