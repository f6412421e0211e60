// Integration: several steps in flight and attention groups change nothing but the speed. The
// golden model on two pipeline stages (each with its layers' experts) as real processes: 64
// concurrent greedy streams of mixed lengths, some cancelled midway, and a batch job beside them
// give the same tokens with --steps-in-flight 1, 2 and 4, and with a second attention group
// beside the stages (one stage of every layer, its experts those of the first group's stages): no
// token lost or duplicated, and a cancelled stream's tokens are the start of its uncancelled twin's.
#include <algorithm>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/failover_streams.h"
#include "tests/testing/golden.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/process.h"

namespace mmx {
namespace {

constexpr int kStreams = 64;
constexpr int kJobRequests = 12;

std::string PipelineShard() {
  return absl::StrCat("model: ", testing::GoldenDir(), R"(
workers:
  - {name: stage0, embedding: true, attention: [0, 4], experts: [{layers: [0, 4], ids: all}]}
  - {name: stage1, attention: [4, 8], lm_head: true, experts: [{layers: [4, 8], ids: all}]}
)");
}

// The same stages as group a, and group b: one worker with every layer's attention, using group
// a's stages as its expert hosts.
std::string StagesBesideAWholeGroupShard() {
  return absl::StrCat("model: ", testing::GoldenDir(), R"(
workers:
  - {name: stage0, group: a, embedding: true, attention: [0, 4], experts: [{layers: [0, 4], ids: all}]}
  - {name: stage1, group: a, attention: [4, 8], lm_head: true, experts: [{layers: [4, 8], ids: all}]}
  - {name: whole, group: b, embedding: true, attention: [0, 8], lm_head: true}
)");
}

// Stream i's prompt and length; every eighth stream is the twin of the one before (same
// request), cancelled after its second token.
std::vector<int32_t> Prompt(int i) {
  if (i % 8 == 7) --i;
  std::vector<int32_t> p;
  for (int t = 0; t < 1 + (i * 7) % 29; ++t) p.push_back((i * 31 + t * 17) % 400);
  return p;
}
int MaxTokens(int i) { return 2 + ((i % 8 == 7 ? i - 1 : i) * 5) % 15; }
bool Cancelled(int i) { return i % 8 == 7; }

struct Outputs {
  std::vector<std::vector<int32_t>> streams;
  std::vector<std::vector<int32_t>> job;
  int steps_in_flight_limit = 0;
  int64_t overlapped_steps = 0;  // sent while another was out
  std::map<std::string, double> worker_steps;  // the workers that ran steps
};

Outputs Serve(int steps_in_flight, const std::string& shard = PipelineShard()) {
  Outputs out;
  const std::string state_dir =
      testing::TempPath(absl::StrCat("steps-in-flight-", steps_in_flight, shard == PipelineShard() ? "" : "-groups"));
  auto cluster = testing::LocalCluster::StartWith(
      shard, {"--steps-in-flight", absl::StrCat(steps_in_flight), "--max-concurrent", "64",
                        "--state-dir", state_dir});
  EXPECT_TRUE(cluster.ok()) << cluster.status();
  if (!cluster.ok()) return out;
  testing::LocalCluster& c = **cluster;
  EXPECT_TRUE(c.WaitReady(absl::Seconds(60)).ok()) << c.Log("coordinator");

  v1::SubmitJobRequest submit;
  for (int i = 0; i < kJobRequests; ++i) {
    v1::GenerateRequest* r = submit.add_requests();
    for (int t = 0; t < 3 + (i * 11) % 37; ++t) r->add_prompt_token_ids((i * 13 + t * 7) % 400);
    r->mutable_sampling()->set_max_tokens(4 + (i * 3) % 12);
    r->mutable_sampling()->set_ignore_eos(true);
  }
  v1::Job job;
  {
    grpc::ClientContext context;
    EXPECT_TRUE(c.stub().SubmitJob(&context, submit, &job).ok());
  }
  std::vector<std::unique_ptr<testing::Stream>> streams;
  for (int i = 0; i < kStreams; ++i) {
    streams.push_back(std::make_unique<testing::Stream>(c.stub(), Prompt(i), MaxTokens(i), 0.f, 0));
  }
  // Each stream read in turn to its end; a cancelled one after its second token (the call stays
  // readable until the cancel lands: whatever came meanwhile counts).
  for (int i = 0; i < kStreams; ++i) {
    testing::Stream& s = *streams[i];
    if (Cancelled(i)) {
      while (s.tokens.size() < 2 && s.ReadOne()) {
      }
      s.Cancel();
      (void)s.ReadToEnd();
    } else {
      EXPECT_TRUE(s.ReadToEnd().ok()) << "stream " << i;
      EXPECT_EQ(s.finish_reason, "length") << "stream " << i;
    }
    out.streams.push_back(s.tokens);
  }
  const v1::Job done = testing::AwaitJobSucceeded(c.stub(), job.job_id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  for (const v1::JobResult& r : done.results()) {
    EXPECT_TRUE(r.error().empty()) << r.error();
    out.job.emplace_back(r.token_ids().begin(), r.token_ids().end());
  }
  auto status = c.Status();
  EXPECT_TRUE(status.ok());
  if (status.ok()) {
    out.steps_in_flight_limit = status->stats().steps_in_flight_limit();
    out.overlapped_steps = status->stats().overlapped_steps_total();
    out.worker_steps.insert(status->stats().worker_step_p50_s().begin(), status->stats().worker_step_p50_s().end());
  }
  return out;
}

TEST(StepsInFlightTest, GreedyOutputsAreTheSameWithOneTwoAndFourStepsInFlightAndTwoGroups) {
  const Outputs one = Serve(1);
  ASSERT_EQ(one.streams.size(), static_cast<size_t>(kStreams));
  ASSERT_EQ(one.job.size(), static_cast<size_t>(kJobRequests));
  EXPECT_EQ(one.steps_in_flight_limit, 1);
  // `n` steps in flight per group, `limit` in all.
  auto check = [&](const Outputs& run, int n, int limit) {
    ASSERT_EQ(run.streams.size(), one.streams.size());
    EXPECT_EQ(run.steps_in_flight_limit, limit);
    // Several were out at once (and never with one in flight).
    if (n == 1) {
      EXPECT_EQ(run.overlapped_steps, 0);
    } else {
      EXPECT_GT(run.overlapped_steps, 0);
    }
    for (int i = 0; i < kStreams; ++i) {
      if (!Cancelled(i)) {
        EXPECT_EQ(run.streams[i].size(), static_cast<size_t>(MaxTokens(i))) << n << " in flight of " << limit << ", stream " << i;
        EXPECT_EQ(run.streams[i], one.streams[i]) << n << " in flight of " << limit << ", stream " << i;
        continue;
      }
      const std::vector<int32_t>& twin = run.streams[i - 1];
      EXPECT_GE(run.streams[i].size(), 2u);
      ASSERT_LE(run.streams[i].size(), twin.size()) << n << " in flight of " << limit << ", stream " << i;
      EXPECT_TRUE(std::equal(run.streams[i].begin(), run.streams[i].end(), twin.begin()))
          << n << " in flight of " << limit << ": cancelled stream " << i << " is not the start of its twin";
    }
    EXPECT_EQ(run.job, one.job) << n << " in flight of " << limit;
  };
  check(one, 1, 1);
  check(Serve(2), 2, 2);
  check(Serve(4), 4, 4);
  const Outputs groups = Serve(2, StagesBesideAWholeGroupShard());
  check(groups, 2, 4);
  EXPECT_TRUE(groups.worker_steps.contains("stage0")) << "group a ran no step";
  EXPECT_TRUE(groups.worker_steps.contains("whole")) << "group b ran no step";
}

}  // namespace
}  // namespace mmx
