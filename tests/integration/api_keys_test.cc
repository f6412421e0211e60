// Integration: API keys (issue 14, point 2) on a real coordinator and worker. No or an unknown
// key is UNAUTHENTICATED; a user's jobs are its own (another user gets NOT_FOUND, does not list
// them, and replaying its idempotency key makes a job of its own); an admin sees and cancels all
// and is the only one shown the workers; SIGHUP reads the file again; no key reaches the logs;
// the mmx client sends --api-key or MMX_API_KEY.
#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/shards.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kAlice[] = "alice-key-0123456789abcdef";
constexpr char kBob[] = "bob-key-0123456789abcdefgh";
constexpr char kOps[] = "ops-key-0123456789abcdefgh";
constexpr char kCarol[] = "carol-key-0123456789abcdef";

class ApiKeysTest : public ::testing::Test {
 protected:
  void SetUp() override {
    state_ = testing::TempPath("api-keys-state");
    keys_ = state_ + "/keys.txt";
    std::filesystem::create_directories(state_);
    std::ofstream(keys_) << "alice user " << kAlice << "\nbob user " << kBob << "\nops admin " << kOps << "\n";
    auto c = testing::LocalCluster::StartWith(testing::OneWorkerShard(testing::GoldenDir()),
                                              {"--api-keys", keys_, "--state-dir", state_,
                                               "--max-concurrent-per-key", "1"});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = *std::move(c);
    ASSERT_TRUE(cluster_->WaitReady(absl::Seconds(60)).ok()) << cluster_->Log("coordinator");
  }
  void TearDown() override {
    cluster_.reset();
    std::filesystem::remove_all(state_);
  }
  static void As(grpc::ClientContext* context, const std::string& key) {
    if (!key.empty()) context->AddMetadata("authorization", "Bearer " + key);
    context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  }
  grpc::Status Status(const std::string& key, v1::ClusterStatus* status) {
    grpc::ClientContext context;
    As(&context, key);
    return cluster_->stub().GetClusterStatus(&context, v1::GetClusterStatusRequest(), status);
  }
  grpc::Status Submit(const std::string& key, const std::string& idempotency_key, v1::Job* job) {
    v1::SubmitJobRequest request;
    request.set_idempotency_key(idempotency_key);
    v1::GenerateRequest* r = request.add_requests();
    r->add_prompt_token_ids(5);
    r->mutable_sampling()->set_max_tokens(2);
    grpc::ClientContext context;
    As(&context, key);
    return cluster_->stub().SubmitJob(&context, request, job);
  }
  grpc::Status GetJob(const std::string& key, const std::string& id, v1::Job* job) {
    v1::GetJobRequest request;
    request.set_job_id(id);
    grpc::ClientContext context;
    As(&context, key);
    return cluster_->stub().GetJob(&context, request, job);
  }
  std::vector<std::string> ListJobs(const std::string& key) {
    grpc::ClientContext context;
    As(&context, key);
    v1::ListJobsResponse response;
    EXPECT_TRUE(cluster_->stub().ListJobs(&context, v1::ListJobsRequest(), &response).ok());
    std::vector<std::string> ids;
    for (const v1::Job& j : response.jobs()) ids.push_back(j.job_id());
    return ids;
  }
  grpc::StatusCode Generate(const std::string& key) {
    v1::GenerateRequest request;
    request.add_prompt_token_ids(5);
    request.mutable_sampling()->set_max_tokens(2);
    grpc::ClientContext context;
    As(&context, key);
    auto reader = cluster_->stub().Generate(&context, request);
    v1::GenerateResponse response;
    while (reader->Read(&response)) {
    }
    return reader->Finish().error_code();
  }

  std::string state_, keys_;
  std::unique_ptr<testing::LocalCluster> cluster_;
};

TEST_F(ApiKeysTest, NoOrUnknownKeysAreUnauthenticatedAndUsersSeeNoWorkers) {
  v1::ClusterStatus status;
  const grpc::Status none = Status("", &status);
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("needs an API key"));
  EXPECT_EQ(Status("not-a-key-0123456789abcdef", &status).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(""), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Generate(kAlice), grpc::StatusCode::OK);
  v1::Job job;
  EXPECT_EQ(Submit("", "", &job).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  ASSERT_TRUE(Status(kAlice, &status).ok());
  EXPECT_TRUE(status.ready());
  EXPECT_EQ(status.workers_size(), 0) << "a user sees no per-worker detail";
  EXPECT_TRUE(status.stats().worker_step_p50_s().empty());
  ASSERT_TRUE(Status(kOps, &status).ok());
  EXPECT_EQ(status.workers_size(), 1);
}

// --max-concurrent-per-key 1: while Alice has a call open her second is refused at once; Bob's
// is not, and Alice's slot comes back when her call ends.
TEST_F(ApiKeysTest, AKeyOverItsConcurrencyLimitIsRefusedAndOthersAreNot) {
  v1::GenerateRequest request;
  request.add_prompt_token_ids(5);
  request.mutable_sampling()->set_max_tokens(400);
  request.mutable_sampling()->set_ignore_eos(true);
  grpc::ClientContext open;
  As(&open, kAlice);
  auto reader = cluster_->stub().Generate(&open, request);
  v1::GenerateResponse response;
  ASSERT_TRUE(reader->Read(&response)) << "the first call streams";
  EXPECT_EQ(Generate(kAlice), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Generate(kBob), grpc::StatusCode::OK);
  open.TryCancel();
  while (reader->Read(&response)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The slot is given back when the server is done with the call: the next call gets it.
  grpc::StatusCode again = grpc::StatusCode::RESOURCE_EXHAUSTED;
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (again == grpc::StatusCode::RESOURCE_EXHAUSTED && absl::Now() < give_up) again = Generate(kAlice);
  EXPECT_EQ(again, grpc::StatusCode::OK);
}

TEST_F(ApiKeysTest, AUsersJobsAreItsOwnAndAnAdminSeesAndCancelsAll) {
  v1::Job alices, bobs, job;
  ASSERT_TRUE(Submit(kAlice, "retry-1", &alices).ok());
  EXPECT_EQ(alices.owner(), "alice");
  // Bob replays Alice's idempotency key: a job of his own, not hers.
  ASSERT_TRUE(Submit(kBob, "retry-1", &bobs).ok());
  EXPECT_NE(bobs.job_id(), alices.job_id());
  const grpc::Status hidden = GetJob(kBob, alices.job_id(), &job);
  EXPECT_EQ(hidden.error_code(), grpc::StatusCode::NOT_FOUND);
  {
    grpc::ClientContext context;
    As(&context, kBob);
    v1::CancelJobRequest cancel;
    cancel.set_job_id(alices.job_id());
    EXPECT_EQ(cluster_->stub().CancelJob(&context, cancel, &job).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  EXPECT_THAT(ListJobs(kBob), ::testing::ElementsAre(bobs.job_id()));
  EXPECT_THAT(ListJobs(kAlice), ::testing::ElementsAre(alices.job_id()));
  EXPECT_THAT(ListJobs(kOps), ::testing::UnorderedElementsAre(alices.job_id(), bobs.job_id()));
  EXPECT_TRUE(GetJob(kOps, alices.job_id(), &job).ok());
  grpc::ClientContext context;
  As(&context, kOps);
  v1::CancelJobRequest cancel;
  cancel.set_job_id(alices.job_id());
  EXPECT_TRUE(cluster_->stub().CancelJob(&context, cancel, &job).ok());
}

TEST_F(ApiKeysTest, SighupReadsTheKeysAgainAndNoKeyReachesTheLog) {
  v1::ClusterStatus status;
  EXPECT_EQ(Status(kCarol, &status).error_code(), grpc::StatusCode::UNAUTHENTICATED);
  std::ofstream(keys_) << "carol admin " << kCarol << "\n";
  cluster_->Signal("coordinator", SIGHUP);
  // The reload is logged when done: wait for that line (the log is the coordinator's only
  // announcement of it), then Carol is in and Alice out.
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < give_up && cluster_->Log("coordinator").find("API keys read again") == std::string::npos) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  EXPECT_THAT(cluster_->Log("coordinator"), HasSubstr("SIGHUP: API keys read again (1 keys)"));
  EXPECT_TRUE(Status(kCarol, &status).ok());
  EXPECT_EQ(Status(kAlice, &status).error_code(), grpc::StatusCode::UNAUTHENTICATED);

  // The mmx client: --api-key, or MMX_API_KEY.
  const std::string mmx = testing::BinaryPath("mmx");
  const testing::ProcessResult with_flag =
      testing::RunToExit({mmx, "status", "--server", cluster_->address(), "--api-key", kCarol}, absl::Seconds(30));
  EXPECT_EQ(with_flag.exit_code, 0) << with_flag.output;
  const testing::ProcessResult with_env = testing::RunToExit(
      {"/usr/bin/env", std::string("MMX_API_KEY=") + kCarol, mmx, "status", "--server", cluster_->address()},
      absl::Seconds(30));
  EXPECT_EQ(with_env.exit_code, 0) << with_env.output;
  const testing::ProcessResult without =
      testing::RunToExit({mmx, "status", "--server", cluster_->address()}, absl::Seconds(30));
  EXPECT_NE(without.exit_code, 0);
  EXPECT_THAT(without.output, HasSubstr("needs an API key"));

  // The Python client: --api-key.
  const testing::ProcessResult python = testing::RunToExit(
      {"/usr/bin/env", "MMX_PY_STUBS=" + std::string(MMX_BINARY_DIR) + "/python", "/usr/bin/python3",
       std::string(MMX_SOURCE_DIR) + "/clients/python/mmx_client.py", "--server", cluster_->address(), "--api-key",
       kCarol, "status"},
      absl::Seconds(60));
  EXPECT_EQ(python.exit_code, 0) << python.output;

  for (const char* key : {kAlice, kBob, kOps, kCarol}) {
    EXPECT_THAT(cluster_->Log("coordinator"), Not(HasSubstr(key)));
    EXPECT_THAT(cluster_->Log("all"), Not(HasSubstr(key)));
  }
}

}  // namespace
}  // namespace mmx
