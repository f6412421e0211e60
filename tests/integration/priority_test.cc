// Integration: an interactive request beside a batch job that fills the cluster, with real
// processes on loopback (one worker, the `small` preset). The job may hold at most
// --max-job-share of the running sequences; an interactive request joins the step after the one
// in flight, and its prompt's step is its own (jobs sit out while an interactive prompt
// prefills: coordinator/step_planner.h). So its first token beside the job comes within twice its
// time alone plus one of the job's steps (the one it waits out), the bound.
// docs/benchmarks.md has the figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "model/model_maker.h"
#include "tests/testing/http_get.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/shards.h"

namespace mmx {
namespace {

using Clock = std::chrono::steady_clock;

// Seconds from the call to the first token of a 2-token request.
double TimeToFirstToken(v1::Inference::Stub& stub, int32_t seed) {
  v1::GenerateRequest request;
  for (int i = 0; i < 8; ++i) request.add_prompt_token_ids((seed * 37 + i * 11) % 30000);
  request.mutable_sampling()->set_max_tokens(2);
  grpc::ClientContext context;
  const Clock::time_point start = Clock::now();
  auto reader = stub.Generate(&context, request);
  v1::GenerateResponse response;
  double ttft = -1;
  while (reader->Read(&response)) {
    if (ttft < 0 && response.token_ids_size() > 0) ttft = std::chrono::duration<double>(Clock::now() - start).count();
  }
  EXPECT_TRUE(reader->Finish().ok());
  return ttft;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// mmx_step_seconds' sum and count from the coordinator's /metrics.
std::pair<double, double> StepSeconds(const std::string& metrics_address) {
  double sum = 0, count = 0;
  for (absl::string_view line : absl::StrSplit(testing::HttpGet(metrics_address, "/metrics"), '\n')) {
    std::vector<absl::string_view> parts = absl::StrSplit(line, ' ');
    if (parts.size() != 2) continue;
    if (parts[0] == "mmx_step_seconds_sum") (void)absl::SimpleAtod(parts[1], &sum);
    if (parts[0] == "mmx_step_seconds_count") (void)absl::SimpleAtod(parts[1], &count);
  }
  return {sum, count};
}

TEST(PriorityTest, BesideAFullJobAnInteractiveFirstTokenComesWithinTwiceItsTimeAlonePlusOneStep) {
  std::string state = "/tmp/mmx-priority-XXXXXX";
  ASSERT_NE(mkdtemp(state.data()), nullptr);
  const std::string model_dir = state + "/model";
  auto config = model::PresetConfig("small");
  ASSERT_TRUE(config.ok()) << config.status();
  auto made = model::MakeModel(*config, model_dir, model::MakeModelOptions{});
  ASSERT_TRUE(made.ok()) << made.status();
  auto c = testing::LocalCluster::StartWith(testing::OneWorkerShard(model_dir),
                                            {"--state-dir", state, "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(c.ok()) << c.status();
  testing::LocalCluster& cluster = **c;
  ASSERT_TRUE(cluster.WaitReady(absl::Seconds(120)).ok()) << cluster.Log("coordinator");
  auto status = cluster.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  const std::string metrics = status->metrics_address();

  constexpr int kSamples = 15;
  TimeToFirstToken(cluster.stub(), 0);  // warm-up
  std::vector<double> alone, beside;
  for (int i = 0; i < kSamples; ++i) alone.push_back(TimeToFirstToken(cluster.stub(), 100 + i));

  // A job of 64 long requests: more than the 32 running sequences hold.
  v1::SubmitJobRequest submit;
  for (int i = 0; i < 64; ++i) {
    v1::GenerateRequest* r = submit.add_requests();
    for (int t = 0; t < 8; ++t) r->add_prompt_token_ids((i * 13 + t * 7) % 30000);
    r->mutable_sampling()->set_max_tokens(400);
    r->mutable_sampling()->set_ignore_eos(true);
  }
  v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(cluster.stub().SubmitJob(&context, submit, &job).ok());
  }
  // Until the job holds its whole share: 24 of the 32 (--max-job-share 0.75).
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  int running = 0;
  while (absl::Now() < give_up && running < 24) {
    auto s = cluster.Status();
    ASSERT_TRUE(s.ok()) << s.status();
    running = s->running_requests();
    EXPECT_LE(running, 24) << "the job holds more than its share";
    if (running < 24) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // between polls
  }
  ASSERT_EQ(running, 24) << cluster.Log("coordinator");
  // One of the job's steps: their mean over ten steps with the job alone.
  const auto [sum0, count0] = StepSeconds(metrics);
  double sum1 = sum0, count1 = count0;
  while (absl::Now() < give_up && count1 < count0 + 10) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // between polls of /metrics
    std::tie(sum1, count1) = StepSeconds(metrics);
  }
  ASSERT_GE(count1, count0 + 10);
  const double step = (sum1 - sum0) / (count1 - count0);
  for (int i = 0; i < kSamples; ++i) beside.push_back(TimeToFirstToken(cluster.stub(), 200 + i));
  {  // the job was running throughout
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_job_id(job.job_id());
    get.set_omit_results(true);
    v1::Job now;
    ASSERT_TRUE(cluster.stub().GetJob(&context, get, &now).ok());
    EXPECT_LT(now.completed(), 64);
  }
  const double ttft_alone = Median(alone), ttft_beside = Median(beside);
  std::printf("time to first token: alone %.2f ms, beside the job %.2f ms; the job's step %.2f ms\n",
              ttft_alone * 1e3, ttft_beside * 1e3, step * 1e3);
  EXPECT_LE(ttft_beside, 2 * ttft_alone + step);
  grpc::ClientContext context;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job.job_id());
  v1::Job cancelled;
  EXPECT_TRUE(cluster.stub().CancelJob(&context, cancel, &cancelled).ok());
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace mmx
