// Integration: the serving features of mmx-coord with real processes on loopback, on the golden
// tiny-a checkpoint and a test tokenizer (mmx-mkmodel's, passed with --tokenizer): text in and
// out, chat messages, stop strings, usage, cancellation, limits and validation, batch jobs in
// SQLite (including a kill -9 of the coordinator mid-job), Prometheus metrics and gRPC health.

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_maker.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"
#include "tests/testing/shards.h"
#include "tests/testing/http_get.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/streamed_generate.h"
#include "tests/testing/scratch_dir.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;

const std::string kModel = testing::GoldenDir();

std::string OneWorker() { return testing::OneWorkerShard(kModel); }

// The test tokenizer, written once to a file the coordinator loads, with a hole: the last 100
// merges and their tokens (ids 410-509) are removed, so those ids of the model's 512 map to no
// text, as the real model's padding rows do. The server must never sample them.
constexpr int kHoleBegin = 410, kHoleEnd = 510;
const std::string& TokenizerFile() {
  static const std::string path = [] {
    nlohmann::json t = nlohmann::json::parse(tokenizer::MakeTestTokenizerJson(512));
    auto& merges = t["model"]["merges"];
    merges.erase(merges.end() - (kHoleEnd - kHoleBegin), merges.end());
    auto& vocab = t["model"]["vocab"];
    for (auto it = vocab.begin(); it != vocab.end();) {
      const int id = it.value().get<int>();
      it = id >= kHoleBegin && id < kHoleEnd ? vocab.erase(it) : std::next(it);
    }
    const std::string p = testing::ScratchDir("tok") + "/tokenizer.json";
    std::ofstream(p) << t.dump();
    return p;
  }();
  return path;
}

const tokenizer::Tokenizer& Tok() {
  static const auto* t = tokenizer::Tokenizer::Load(TokenizerFile()).value().release();
  return *t;
}

bool ValidUtf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const unsigned char c = s[i];
    const int n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

using testing::Streamed;

Streamed Call(v1::Inference::Stub& stub, const v1::GenerateRequest& request) {
  return testing::StreamGenerate(stub, request);
}

v1::GenerateRequest TextRequest(const std::string& prompt, int max_tokens, bool ignore_eos = true) {
  v1::GenerateRequest r;
  r.set_prompt(prompt);
  r.mutable_sampling()->set_max_tokens(max_tokens);
  r.mutable_sampling()->set_ignore_eos(ignore_eos);
  return r;
}

class ServingTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    state_dir_ = new std::string(testing::ScratchDir("state"));
    auto c = testing::LocalCluster::StartWith(OneWorker(), {"--tokenizer", TokenizerFile(), "--state-dir", *state_dir_,
                                                            "--metrics-listen", "127.0.0.1:0"});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
    ASSERT_TRUE(cluster_->WaitReady(absl::Seconds(120)).ok()) << cluster_->Log("coordinator");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
    std::filesystem::remove_all(*state_dir_);
    delete state_dir_;
  }
  static testing::LocalCluster* cluster_;
  static std::string* state_dir_;
};
testing::LocalCluster* ServingTest::cluster_ = nullptr;
std::string* ServingTest::state_dir_ = nullptr;

TEST_F(ServingTest, TextPromptStreamsValidUtf8DeltasThatDecodeTheIds) {
  const std::string prompt = "The quick brown fox jumps over the lazy dog.";
  Streamed s = Call(cluster_->stub(), TextRequest(prompt, 24));
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  ASSERT_EQ(s.ids.size(), 24u);
  EXPECT_EQ(s.finish_reason, "length");
  ASSERT_FALSE(Tok().IsDefined(kHoleBegin));
  for (const auto& r : s.responses) EXPECT_TRUE(ValidUtf8(r.text())) << "a delta split a character";
  EXPECT_EQ(s.text, Tok().Decode(s.ids, /*skip_special_tokens=*/true));
  for (int32_t id : s.ids) EXPECT_TRUE(Tok().IsDefined(id)) << "sampled id " << id << ", which has no text";
  EXPECT_EQ(s.usage.prompt_tokens(), static_cast<int>(Tok().Encode(prompt, true)->size()));
  EXPECT_EQ(s.usage.completion_tokens(), 24);
  // The same prompt as ids gives the same tokens (greedy).
  v1::GenerateRequest ids;
  const std::vector<int32_t> encoded = *Tok().Encode(prompt, true);
  ids.mutable_prompt_token_ids()->Add(encoded.begin(), encoded.end());
  ids.mutable_sampling()->set_max_tokens(24);
  ids.mutable_sampling()->set_ignore_eos(true);
  EXPECT_EQ(Call(cluster_->stub(), ids).ids, s.ids);
}

TEST_F(ServingTest, StopStringEndsGenerationAndIsLeftOut) {
  Streamed full = Call(cluster_->stub(), TextRequest("Once upon a time", 32));
  ASSERT_TRUE(full.status.ok());
  ASSERT_GE(full.text.size(), 12u) << "the model produced too little text to pick a stop string from";
  // A stop string from the middle of the greedy text (on a character boundary).
  size_t at = full.text.size() / 2;
  while (at > 0 && (static_cast<unsigned char>(full.text[at]) & 0xC0) == 0x80) --at;
  size_t len = 1;
  while (at + len < full.text.size() && (static_cast<unsigned char>(full.text[at + len]) & 0xC0) == 0x80) ++len;
  const std::string stop = full.text.substr(at, len + 1);
  v1::GenerateRequest r = TextRequest("Once upon a time", 32);
  r.mutable_sampling()->add_stop(stop);
  Streamed s = Call(cluster_->stub(), r);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  EXPECT_EQ(s.finish_reason, "stop");
  EXPECT_EQ(s.text, full.text.substr(0, full.text.find(stop)));
  EXPECT_LT(s.ids.size(), full.ids.size());
  EXPECT_EQ(s.usage.completion_tokens(), static_cast<int>(s.ids.size()));
}

TEST_F(ServingTest, ChatMessagesUseTheChatFormat) {
  v1::GenerateRequest r;
  auto* sys = r.add_messages();
  sys->set_role("system");
  sys->set_content("You are terse.");
  auto* user = r.add_messages();
  user->set_role("user");
  user->set_content("Hello!");
  r.mutable_sampling()->set_max_tokens(8);
  r.mutable_sampling()->set_ignore_eos(true);
  Streamed s = Call(cluster_->stub(), r);
  ASSERT_TRUE(s.status.ok()) << s.status.error_message();
  const std::string layout = *tokenizer::FormatMiniMaxChat({{"system", "You are terse."}, {"user", "Hello!"}}, true);
  const std::vector<int32_t> layout_ids = *Tok().Encode(layout, false);
  EXPECT_EQ(s.usage.prompt_tokens(), static_cast<int>(layout_ids.size()));
  EXPECT_EQ(s.ids.size(), 8u);
  // The server fed exactly the layout's tokens: the same ids sent as ids generate the same text.
  v1::GenerateRequest ids;
  ids.mutable_prompt_token_ids()->Add(layout_ids.begin(), layout_ids.end());
  ids.mutable_sampling()->set_max_tokens(8);
  ids.mutable_sampling()->set_ignore_eos(true);
  Streamed same = Call(cluster_->stub(), ids);
  ASSERT_TRUE(same.status.ok()) << same.status.error_message();
  EXPECT_EQ(s.ids, same.ids);
  EXPECT_EQ(s.text, same.text);
}

TEST_F(ServingTest, CancellingTheStreamFreesTheSequence) {
  grpc::ClientContext context;
  v1::GenerateRequest r = TextRequest("cancel me", 4000);
  auto reader = cluster_->stub().Generate(&context, r);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response));
  ASSERT_TRUE(reader->Read(&response));
  context.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  int running = -1;
  while (absl::Now() < give_up) {
    absl::StatusOr<v1::ClusterStatus> st = cluster_->Status();
    ASSERT_TRUE(st.ok());
    running = st->running_requests();
    if (running == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(running, 0) << "the cancelled request still holds a sequence";
}

TEST_F(ServingTest, MalformedRequestsGetInvalidArgumentOrNotFound) {
  auto code_of = [&](const v1::GenerateRequest& r) { return Call(cluster_->stub(), r).status; };
  v1::GenerateRequest empty;
  empty.mutable_sampling()->set_max_tokens(4);
  EXPECT_EQ(code_of(empty).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(code_of(empty).error_message(), HasSubstr("prompt is empty"));
  v1::GenerateRequest both = TextRequest("x", 4);
  both.add_prompt_token_ids(1);
  EXPECT_EQ(code_of(both).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest out_of_range;
  out_of_range.add_prompt_token_ids(100000);
  out_of_range.mutable_sampling()->set_max_tokens(4);
  EXPECT_THAT(code_of(out_of_range).error_message(), HasSubstr("outside the vocabulary"));
  v1::GenerateRequest hot = TextRequest("x", 4);
  hot.mutable_sampling()->set_temperature(-1);
  EXPECT_EQ(code_of(hot).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::GenerateRequest top_p = TextRequest("x", 4);
  top_p.mutable_sampling()->set_top_p(0);
  EXPECT_THAT(code_of(top_p).error_message(), HasSubstr("top_p must be in (0, 1]"));

  grpc::ClientContext context;
  v1::GetJobRequest get;
  get.set_job_id("job-does-not-exist");
  v1::Job job;
  const grpc::Status st = cluster_->stub().GetJob(&context, get, &job);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(st.error_message(), HasSubstr("job-does-not-exist"));
}

v1::Job WaitForJob(v1::Inference::Stub& stub, const std::string& id, absl::Duration timeout = absl::Seconds(120)) {
  const absl::Time give_up = absl::Now() + timeout;
  v1::Job job;
  while (absl::Now() < give_up) {
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_job_id(id);
    if (stub.GetJob(&context, get, &job).ok() && job.state() != v1::JOB_STATE_QUEUED &&
        job.state() != v1::JOB_STATE_RUNNING) {
      return job;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return job;
}

TEST_F(ServingTest, JobsRunToTheSameOutputsAsSoloRequestsAndKeyedRetriesReturnTheSameJob) {
  v1::SubmitJobRequest submit;
  submit.set_idempotency_key(absl::StrCat("key-", getpid()));
  const std::vector<std::string> prompts = {"alpha", "beta gamma", "the end", "code: int x = 1;", "zzz"};
  for (const std::string& p : prompts) *submit.add_requests() = TextRequest(p, 6);
  v1::Job job, again;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(cluster_->stub().SubmitJob(&context, submit, &job).ok());
  }
  {
    grpc::ClientContext context;
    ASSERT_TRUE(cluster_->stub().SubmitJob(&context, submit, &again).ok());
  }
  EXPECT_EQ(again.job_id(), job.job_id());
  EXPECT_EQ(job.total(), 5);
  const v1::Job done = WaitForJob(cluster_->stub(), job.job_id());
  ASSERT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED);
  ASSERT_EQ(done.results_size(), 5);
  for (int i = 0; i < 5; ++i) {
    const v1::JobResult& r = done.results(i);
    EXPECT_EQ(r.index(), i);
    EXPECT_TRUE(r.error().empty()) << r.error();
    const Streamed solo = Call(cluster_->stub(), TextRequest(prompts[i], 6));
    EXPECT_EQ(std::vector<int32_t>(r.token_ids().begin(), r.token_ids().end()), solo.ids) << "request " << i;
    EXPECT_EQ(r.text(), solo.text);
    EXPECT_EQ(r.finish_reason(), "length");
  }
  // Paged: 2 + 2 + 1 results, in order, each token leading to the next; a made-up token is refused.
  std::vector<int> paged;
  v1::GetJobRequest get;
  get.set_job_id(job.job_id());
  get.set_page_size(2);
  for (int page = 0; page < 3; ++page) {
    grpc::ClientContext c;
    v1::Job part;
    ASSERT_TRUE(cluster_->stub().GetJob(&c, get, &part).ok());
    EXPECT_EQ(part.completed(), 5);
    for (const v1::JobResult& r : part.results()) paged.push_back(r.index());
    EXPECT_EQ(part.next_page_token().empty(), page == 2);
    get.set_page_token(part.next_page_token());
  }
  EXPECT_EQ(paged, (std::vector<int>{0, 1, 2, 3, 4}));
  {
    grpc::ClientContext c;
    v1::Job part;
    get.set_page_token("not-a-token");
    EXPECT_EQ(cluster_->stub().GetJob(&c, get, &part).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  }
  grpc::ClientContext context;
  v1::ListJobsResponse list;
  ASSERT_TRUE(cluster_->stub().ListJobs(&context, v1::ListJobsRequest(), &list).ok());
  bool listed = false;
  for (const v1::Job& j : list.jobs()) listed |= j.job_id() == job.job_id();
  EXPECT_TRUE(listed);
}

TEST_F(ServingTest, CancelledJobEndsCancelled) {
  v1::SubmitJobRequest submit;
  for (int i = 0; i < 40; ++i) *submit.add_requests() = TextRequest(absl::StrCat("long ", i), 400);
  v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(cluster_->stub().SubmitJob(&context, submit, &job).ok());
  }
  // Cancel once the job runs (its first results are in), not before.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  while (absl::Now() < give_up) {
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_job_id(job.job_id());
    get.set_omit_results(true);
    v1::Job seen;
    if (cluster_->stub().GetJob(&context, get, &seen).ok() && seen.state() == v1::JOB_STATE_RUNNING) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // between polls of the job's state
  }
  v1::Job cancelled;
  grpc::ClientContext context;
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job.job_id());
  ASSERT_TRUE(cluster_->stub().CancelJob(&context, cancel, &cancelled).ok());
  EXPECT_EQ(cancelled.state(), v1::JOB_STATE_CANCELLED);
  const v1::Job final_job = WaitForJob(cluster_->stub(), job.job_id());
  EXPECT_EQ(final_job.state(), v1::JOB_STATE_CANCELLED);
  EXPECT_EQ(final_job.completed(), 40);
  int cancelled_results = 0;
  for (const v1::JobResult& r : final_job.results()) cancelled_results += r.finish_reason() == "cancelled";
  EXPECT_GT(cancelled_results, 30);
}

TEST_F(ServingTest, MetricsAndHealthAreServed) {
  ASSERT_TRUE(Call(cluster_->stub(), TextRequest("metrics please", 4)).status.ok());
  absl::StatusOr<v1::ClusterStatus> status = cluster_->Status();
  ASSERT_TRUE(status.ok());
  ASSERT_FALSE(status->metrics_address().empty());
  EXPECT_GT(status->stats().requests_total(), 0);
  EXPECT_GT(status->stats().generated_tokens_total(), 0);
  EXPECT_GT(status->stats().worker_step_p50_s().at("all"), 0);
  const std::string metrics = testing::HttpGet(status->metrics_address(), "/metrics");
  EXPECT_THAT(metrics, HasSubstr("HTTP/1.1 200 OK"));
  for (const char* name : {"mmx_requests_total", "mmx_generated_tokens_total", "mmx_queue_depth",
                           "mmx_time_to_first_token_seconds_bucket", "mmx_time_per_output_token_seconds_bucket",
                           "mmx_worker_step_seconds_bucket{worker=\"all\""}) {
    EXPECT_THAT(metrics, HasSubstr(name));
  }
  EXPECT_THAT(testing::HttpGet(status->metrics_address(), "/healthz"), HasSubstr("200 OK"));

  auto health = grpc::health::v1::Health::NewStub(
      grpc::CreateChannel(cluster_->address(), grpc::InsecureChannelCredentials()));
  // The health service follows the cluster's readiness (set when it changes): the cluster
  // served a request, so it says SERVING, for the server and for the Inference service.
  for (const char* service : {"", "mmx.v1.Inference"}) {
    grpc::health::v1::HealthCheckResponse resp;
    grpc::ClientContext context;
    grpc::health::v1::HealthCheckRequest req;
    req.set_service(service);
    ASSERT_TRUE(health->Check(&context, req, &resp).ok()) << service;
    EXPECT_EQ(resp.status(), grpc::health::v1::HealthCheckResponse::SERVING) << service;
  }
}

// The Python example client (clients/python, python3-grpcio) against the live cluster: a streamed
// generation equal to the C++ client's, and a job.
TEST_F(ServingTest, PythonClientStreamsAndRunsAJob) {
  const std::string stubs = std::string(MMX_BINARY_DIR) + "/python";
  const std::string script = std::string(MMX_SOURCE_DIR) + "/clients/python/mmx_client.py";
  ASSERT_TRUE(std::filesystem::exists(stubs + "/mmx/v1/inference_pb2_grpc.py")) << "build target mmx_python_stubs";
  testing::ProcessResult gen = testing::RunToExit(
      {"/usr/bin/env", "MMX_PY_STUBS=" + stubs, "/usr/bin/python3", script, "--server", cluster_->address(), "--json",
       "generate", "Hello from Python", "--max-tokens", "10", "--ignore-eos"},
      absl::Seconds(60));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  const Streamed solo = Call(cluster_->stub(), TextRequest("Hello from Python", 10));
  std::string ids = "[";
  for (size_t i = 0; i < solo.ids.size(); ++i) ids += (i ? ", " : "") + std::to_string(solo.ids[i]);
  ids += "]";
  EXPECT_THAT(gen.output, HasSubstr("\"ids\": " + ids));
  EXPECT_THAT(gen.output, HasSubstr("\"finish_reason\": \"length\""));
  testing::ProcessResult job = testing::RunToExit(
      {"/usr/bin/env", "MMX_PY_STUBS=" + stubs, "/usr/bin/python3", script, "--server", cluster_->address(), "job",
       "one", "two", "--max-tokens", "3"},
      absl::Seconds(60));
  ASSERT_EQ(job.exit_code, 0) << job.output;
  EXPECT_THAT(job.output, HasSubstr("\"state\": \"JOB_STATE_SUCCEEDED\""));
  EXPECT_THAT(job.output, HasSubstr("\"streamed\": [0, 1]"));  // StreamJobResults, following the job
  testing::ProcessResult bad = testing::RunToExit(
      {"/usr/bin/env", "MMX_PY_STUBS=" + stubs, "/usr/bin/python3", script, "--server", cluster_->address(),
       "generate", "x", "--max-tokens", "0"},
      absl::Seconds(60));
  EXPECT_NE(bad.exit_code, 0);
  EXPECT_THAT(bad.output, HasSubstr("INVALID_ARGUMENT"));
}

// A second cluster with tight limits: each limit gives its own clear refusal.
TEST(ServingLimitsTest, FlagsBoundPromptsTokensAndTheQueue) {
  auto c = testing::LocalCluster::StartWith(OneWorker(), {"--tokenizer", TokenizerFile(), "--max-prompt-tokens", "8",
                                                          "--max-tokens", "3000", "--max-concurrent", "1",
                                                          "--max-queue", "1", "--metrics-listen", "off"});
  ASSERT_TRUE(c.ok()) << c.status();
  testing::LocalCluster& cluster = **c;
  ASSERT_TRUE(cluster.WaitReady(absl::Seconds(120)).ok()) << cluster.Log("coordinator");
  v1::GenerateRequest long_prompt;
  for (int i = 0; i < 9; ++i) long_prompt.add_prompt_token_ids(i);
  long_prompt.mutable_sampling()->set_max_tokens(2);
  Streamed s = Call(cluster.stub(), long_prompt);
  EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.status.error_message(), HasSubstr("--max-prompt-tokens"));
  s = Call(cluster.stub(), TextRequest("x", 3001));
  EXPECT_THAT(s.status.error_message(), HasSubstr("--max-tokens"));

  // One running (max-concurrent 1), one queued (max-queue 1): the third is refused.
  grpc::ClientContext c1, c2;
  auto r1 = cluster.stub().Generate(&c1, TextRequest("first", 3000));
  v1::GenerateResponse resp;
  ASSERT_TRUE(r1->Read(&resp));  // running
  auto r2 = cluster.stub().Generate(&c2, TextRequest("second", 3000));
  // Wait until the second one sits in the queue: sent before that, the third would queue itself
  // and wait out the first's 3000 tokens.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < give_up) {
    absl::StatusOr<v1::ClusterStatus> status = cluster.Status();
    if (status.ok() && status->stats().queue_depth() >= 1) break;
    absl::SleepFor(absl::Milliseconds(20));
  }
  const grpc::Status third = Call(cluster.stub(), TextRequest("third", 2)).status;
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("--max-queue"));
  c1.TryCancel();
  c2.TryCancel();
  while (r1->Read(&resp)) {
  }
  while (r2->Read(&resp)) {
  }
  r1->Finish();
  r2->Finish();
  // Jobs are off without --state-dir, and say how to turn them on.
  grpc::ClientContext context;
  v1::ListJobsResponse list;
  const grpc::Status jobs = cluster.stub().ListJobs(&context, v1::ListJobsRequest(), &list);
  EXPECT_EQ(jobs.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(jobs.error_message(), HasSubstr("--state-dir"));
}

// Tiny step budgets: prompts are prefilled 3 tokens at a time, at most 4 tokens a step, mixed with
// other sequences' decode steps; the outputs must equal those of a cluster with the defaults.
TEST(ServingStepBudgetTest, ChunkedPrefillMixedWithDecodeGivesTheSameTokens) {
  auto small_steps = testing::LocalCluster::StartWith(
      OneWorker(), {"--tokenizer", TokenizerFile(), "--prefill-chunk", "3", "--max-step-tokens", "4",
                    "--metrics-listen", "off"});
  auto defaults = testing::LocalCluster::StartWith(OneWorker(), {"--tokenizer", TokenizerFile(), "--metrics-listen", "off"});
  ASSERT_TRUE(small_steps.ok() && defaults.ok());
  ASSERT_TRUE((*small_steps)->WaitReady(absl::Seconds(120)).ok());
  ASSERT_TRUE((*defaults)->WaitReady(absl::Seconds(120)).ok());
  const std::vector<std::string> prompts = {
      "a short one", "a much longer prompt that takes several chunks of three tokens to prefill completely",
      "another prompt of middling length for the scheduler", "x"};
  std::vector<std::vector<int32_t>> expected;
  for (const std::string& p : prompts) expected.push_back(Call((*defaults)->stub(), TextRequest(p, 12)).ids);
  std::vector<std::thread> threads;
  std::vector<Streamed> got(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    threads.emplace_back([&, i] { got[i] = Call((*small_steps)->stub(), TextRequest(prompts[i], 12)); });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < prompts.size(); ++i) {
    ASSERT_TRUE(got[i].status.ok()) << got[i].status.error_message();
    EXPECT_EQ(got[i].ids, expected[i]) << "prompt " << i;
  }
}

// The mmx command-line client: text generation, chat, and the job commands.
TEST_F(ServingTest, CommandLineClientCoversTextChatAndJobs) {
  const std::string mmx = std::string(MMX_BINARY_DIR) + "/bin/mmx";
  testing::ProcessResult gen = testing::RunToExit(
      {mmx, "generate", "--server", cluster_->address(), "--prompt", "Hello there", "--max-tokens", "6",
       "--ignore-eos", "--json"},
      absl::Seconds(60));
  ASSERT_EQ(gen.exit_code, 0) << gen.output;
  const nlohmann::json j = nlohmann::json::parse(gen.output);
  const Streamed solo = Call(cluster_->stub(), TextRequest("Hello there", 6));
  EXPECT_EQ(j["output_ids"].get<std::vector<int32_t>>(), solo.ids);
  EXPECT_EQ(j["text"].get<std::string>(), solo.text);
  EXPECT_EQ(j["usage"]["completion_tokens"].get<int>(), 6);

  testing::ProcessResult chat = testing::RunToExit(
      {"/bin/sh", "-c", "printf 'first turn\\nsecond turn\\n' | " + mmx + " chat --server " + cluster_->address() +
                            " --max-tokens 4 --ignore-eos"},
      absl::Seconds(60));
  EXPECT_EQ(chat.exit_code, 0) << chat.output;

  const std::string file = cluster_->dir() + "/job.jsonl";
  std::ofstream(file) << R"({"prompt": "one", "sampling": {"max_tokens": 3, "ignore_eos": true}})" << "\n"
                      << R"({"prompt_token_ids": [1, 2, 3], "sampling": {"max_tokens": 2}})" << "\n";
  testing::ProcessResult submit =
      testing::RunToExit({mmx, "submit", file, "--server", cluster_->address(), "--wait", "--json"}, absl::Seconds(60));
  ASSERT_EQ(submit.exit_code, 0) << submit.output;
  const nlohmann::json job = nlohmann::json::parse(submit.output.substr(submit.output.find('{')));
  EXPECT_EQ(job["state"], "JOB_STATE_SUCCEEDED");
  EXPECT_EQ(job["results"].size(), 2u);
  const std::string id = job["job_id"];
  testing::ProcessResult show = testing::RunToExit({mmx, "job", id, "--server", cluster_->address()}, absl::Seconds(30));
  EXPECT_EQ(show.exit_code, 0);
  EXPECT_THAT(show.output, HasSubstr(id + "  succeeded  2/2 done"));
  testing::ProcessResult list = testing::RunToExit({mmx, "jobs", "--server", cluster_->address()}, absl::Seconds(30));
  EXPECT_THAT(list.output, HasSubstr(id));
  testing::ProcessResult cancel = testing::RunToExit({mmx, "cancel", id, "--server", cluster_->address()}, absl::Seconds(30));
  EXPECT_EQ(cancel.exit_code, 0) << cancel.output;  // a finished job stays as it was
  EXPECT_THAT(cancel.output, HasSubstr("succeeded"));
  testing::ProcessResult missing = testing::RunToExit({mmx, "job", "job-nope", "--server", cluster_->address()},
                                                      absl::Seconds(30));
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_THAT(missing.output, HasSubstr("mmx: error: no job 'job-nope'"));
  std::ofstream(file) << "{not json\n";
  testing::ProcessResult bad = testing::RunToExit({mmx, "submit", file, "--server", cluster_->address()}, absl::Seconds(30));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("job.jsonl:1: not a GenerateRequest in JSON"));
}

// kill -9 the coordinator in the middle of a job; a new one on the same --state-dir finishes it.
// What the first recorded is kept as it was and not run again (the new coordinator accepts only
// the requests that had no result), and every result equals the same request run alone.
TEST(ServingDurabilityTest, AJobSurvivesTheCoordinatorBeingKilled) {
  const std::string state = testing::ScratchDir("durable");
  auto c = testing::LocalCluster::StartWith(OneWorker(), {"--tokenizer", TokenizerFile(), "--state-dir", state,
                                                          "--max-concurrent", "2", "--metrics-listen", "off"});
  ASSERT_TRUE(c.ok()) << c.status();
  testing::LocalCluster& cluster = **c;
  ASSERT_TRUE(cluster.WaitReady(absl::Seconds(120)).ok()) << cluster.Log("coordinator");
  constexpr int kRequests = 12;
  v1::SubmitJobRequest submit;
  for (int i = 0; i < kRequests; ++i) *submit.add_requests() = TextRequest(absl::StrCat("request number ", i), 24);
  v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(cluster.stub().SubmitJob(&context, submit, &job).ok());
  }
  // Wait until some, not all, results are in (the job's own progress); then kill.
  const absl::Time give_up = absl::Now() + absl::Seconds(60);
  v1::Job before;
  while (absl::Now() < give_up) {
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_job_id(job.job_id());
    if (cluster.stub().GetJob(&context, get, &before).ok() && before.completed() >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));  // between polls of the job's state
  }
  ASSERT_GE(before.results_size(), 2);
  ASSERT_LT(before.results_size(), kRequests) << "the job finished before the kill; make it longer";
  cluster.KillWorker("coordinator");
  // The worker waits for a coordinator to come back and registers with it by itself.
  cluster.StartCoordinator();
  ASSERT_TRUE(cluster.WaitReady(absl::Seconds(120)).ok()) << cluster.Log("coordinator") << cluster.Log("all");
  EXPECT_THAT(cluster.Log("all"), HasSubstr("registering again when it is back"));
  const v1::Job done = WaitForJob(cluster.stub(), job.job_id());
  EXPECT_EQ(done.state(), v1::JOB_STATE_SUCCEEDED) << cluster.Log("coordinator");
  ASSERT_EQ(done.results_size(), kRequests);
  // The new coordinator ran only what had no result (at most: requests in flight at the kill had
  // none either), so the recorded ones were kept, not recomputed.
  auto status = cluster.Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_LE(status->stats().requests_total(), kRequests - before.results_size());
  EXPECT_GE(status->stats().requests_total(), 1);
  for (const v1::JobResult& kept : before.results()) {
    const v1::JobResult& now = done.results(kept.index());
    EXPECT_EQ(now.text(), kept.text()) << "result " << kept.index();
    EXPECT_EQ(std::vector<int32_t>(now.token_ids().begin(), now.token_ids().end()),
              std::vector<int32_t>(kept.token_ids().begin(), kept.token_ids().end()))
        << "result " << kept.index();
  }
  for (int i = 0; i < kRequests; ++i) {
    const v1::JobResult& r = done.results(i);
    EXPECT_EQ(r.index(), i);
    EXPECT_TRUE(r.error().empty()) << r.error();
    EXPECT_EQ(r.token_ids_size(), 24);
    EXPECT_EQ(r.finish_reason(), "length");
    // The same request alone, on the restarted cluster.
    grpc::ClientContext context;
    auto reader = cluster.stub().Generate(&context, submit.requests(i));
    v1::GenerateResponse response;
    std::vector<int32_t> solo;
    while (reader->Read(&response)) solo.insert(solo.end(), response.token_ids().begin(), response.token_ids().end());
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(std::vector<int32_t>(r.token_ids().begin(), r.token_ids().end()), solo) << "result " << i;
  }
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace mmx
