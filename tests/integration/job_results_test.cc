// Integration: a job's results streamed back (StreamJobResults) and written to a file by
// `mmx job ID --results FILE`, resumed after a broken download, on the golden tiny-a checkpoint
// with real processes on loopback.
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/scratch_dir.h"
#include "tests/testing/shards.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;

class JobResultsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = testing::LocalCluster::StartWith(testing::OneWorkerShard(testing::GoldenDir()),
                                              {"--state-dir", testing::ScratchDir("state")});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
    ASSERT_TRUE(cluster_->WaitReady(absl::Seconds(120)).ok()) << cluster_->Log("coordinator");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }

  static std::string Submit(int requests) {
    v1::SubmitJobRequest submit;
    for (int i = 0; i < requests; ++i) {
      v1::GenerateRequest* r = submit.add_requests();
      for (int id : {1, 2, 3 + i}) r->add_prompt_token_ids(id);
      r->mutable_sampling()->set_max_tokens(24);  // long enough that the download starts while it runs
      r->mutable_sampling()->set_ignore_eos(true);
    }
    grpc::ClientContext context;
    v1::Job job;
    EXPECT_TRUE(cluster_->stub().SubmitJob(&context, submit, &job).ok());
    return job.job_id();
  }

  // The "index" of each line of `path` (-1 for a line that is not a result).
  static std::vector<int> Indices(const std::string& path) {
    std::ifstream in(path);
    std::vector<int> out;
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
      out.push_back(j.is_object() && j.contains("index") ? j["index"].get<int>() : -1);
    }
    return out;
  }

  static testing::ProcessResult Download(const std::string& id, const std::string& file) {
    return testing::RunToExit({std::string(MMX_BINARY_DIR) + "/bin/mmx", "job", id, "--results", file, "--server",
                               cluster_->address()},
                              absl::Seconds(120));
  }

  static testing::LocalCluster* cluster_;
};
testing::LocalCluster* JobResultsTest::cluster_ = nullptr;

std::vector<int> Range(int n) {
  std::vector<int> v(n);
  for (int i = 0; i < n; ++i) v[i] = i;
  return v;
}

// Started while the job runs, the download follows it to the end: every result once, in order.
// A download broken mid-line resumes after the last whole line: each result still exactly once.
TEST_F(JobResultsTest, TheResultsFileHasEveryResultOnceAndADownloadResumes) {
  const std::string id = Submit(12);
  const std::string file = testing::ScratchDir("results") + "/out.jsonl";
  testing::ProcessResult first = Download(id, file);
  ASSERT_EQ(first.exit_code, 0) << first.output;
  ASSERT_EQ(Indices(file), Range(12));
  std::ifstream in(file);
  std::string head;
  for (int i = 0; i < 5; ++i) {
    std::string line;
    std::getline(in, line);
    head += line + "\n";
  }
  const nlohmann::json line0 = nlohmann::json::parse(head.substr(0, head.find('\n')));
  EXPECT_EQ(line0["finish_reason"], "length");
  EXPECT_EQ(line0["token_ids"].size(), 24u);
  std::ofstream(file, std::ios::trunc) << head << R"({"index": 5, "tok)";  // broken mid-line
  testing::ProcessResult resumed = Download(id, file);
  ASSERT_EQ(resumed.exit_code, 0) << resumed.output;
  EXPECT_THAT(resumed.output, HasSubstr("7 results written (from index 5)"));
  EXPECT_EQ(Indices(file), Range(12));

  // A last line longer than the first window read from the file's end (64 KiB) is found too.
  std::ofstream(file, std::ios::trunc) << head << R"({"index": 11, "text": ")" << std::string(200000, 'x')
                                       << "\"}\n" << R"({"index": 12, "te)";
  testing::ProcessResult long_line = Download(id, file);
  ASSERT_EQ(long_line.exit_code, 0) << long_line.output;
  EXPECT_THAT(long_line.output, HasSubstr("0 results written (from index 12)"));
  EXPECT_EQ(Indices(file), (std::vector<int>{0, 1, 2, 3, 4, 11}));

  std::ofstream(file, std::ios::trunc) << "not a result\n";
  testing::ProcessResult foreign = Download(id, file);
  EXPECT_EQ(foreign.exit_code, 1);
  EXPECT_THAT(foreign.output, HasSubstr("does not end with a job result line"));
}

// Following, results come in index order even when a later request ends first: the first
// request here is 40 times longer than the others, so the stream waits at index 0 while the
// others end, then sends 0, 1, ... 7 once each.
TEST_F(JobResultsTest, FollowingWaitsForAnEarlierRequestThatEndsLast) {
  v1::SubmitJobRequest submit;
  for (int i = 0; i < 8; ++i) {
    v1::GenerateRequest* r = submit.add_requests();
    for (int id : {1, 2, 3 + i}) r->add_prompt_token_ids(id);
    r->mutable_sampling()->set_max_tokens(i == 0 ? 400 : 10);
    r->mutable_sampling()->set_ignore_eos(true);
  }
  v1::Job job;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(cluster_->stub().SubmitJob(&context, submit, &job).ok());
  }
  grpc::ClientContext context;
  v1::StreamJobResultsRequest request;
  request.set_job_id(job.job_id());
  request.set_follow(true);
  auto reader = cluster_->stub().StreamJobResults(&context, request);
  std::vector<int> got;
  for (v1::JobResult r; reader->Read(&r);) {
    got.push_back(r.index());
    EXPECT_EQ(r.token_ids_size(), r.index() == 0 ? 400 : 10);
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(got, Range(8));
}

// Without follow: the ended results from from_index on, then the end of the stream; requests
// for nothing sensible get a clear status.
TEST_F(JobResultsTest, StreamJobResultsFromAnIndexAndItsErrors) {
  const std::string id = Submit(4);
  {
    grpc::ClientContext context;
    v1::StreamJobResultsRequest request;
    request.set_job_id(id);
    request.set_follow(true);  // to the end first, so the snapshot below is complete
    auto reader = cluster_->stub().StreamJobResults(&context, request);
    v1::JobResult r;
    int n = 0;
    while (reader->Read(&r)) EXPECT_EQ(r.index(), n++);
    ASSERT_TRUE(reader->Finish().ok());
    EXPECT_EQ(n, 4);
  }
  grpc::ClientContext context;
  v1::StreamJobResultsRequest request;
  request.set_job_id(id);
  request.set_from_index(2);
  auto reader = cluster_->stub().StreamJobResults(&context, request);
  std::vector<int> got;
  for (v1::JobResult r; reader->Read(&r);) got.push_back(r.index());
  EXPECT_TRUE(reader->Finish().ok());
  EXPECT_EQ(got, (std::vector<int>{2, 3}));

  auto status_of = [&](const v1::StreamJobResultsRequest& bad) {
    grpc::ClientContext c;
    auto rd = cluster_->stub().StreamJobResults(&c, bad);
    v1::JobResult r;
    while (rd->Read(&r)) {
    }
    return rd->Finish();
  };
  request.set_from_index(-1);
  const grpc::Status negative = status_of(request);
  EXPECT_EQ(negative.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(negative.error_message(), HasSubstr("from_index"));
  request.set_from_index(0);
  request.set_job_id("job-nope");
  EXPECT_EQ(status_of(request).error_code(), grpc::StatusCode::NOT_FOUND);
}

}  // namespace
}  // namespace mmx
