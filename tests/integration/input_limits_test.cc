// Integration: a client's bad bytes get a clear error through real gRPC (issue 14, point 5).
// Invalid UTF-8 in any string of any request is INVALID_ARGUMENT naming the field (it was
// INTERNAL without a message: proto3 failed the parse inside gRPC), and the coordinator keeps
// serving.
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/shards.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;

const std::string kBad = std::string("x\xFFy", 3);

void WithDeadline(grpc::ClientContext* context) {
  context->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
}

grpc::Status Generate(v1::Inference::Stub& stub, const v1::GenerateRequest& request,
                      int* tokens) {
  grpc::ClientContext context;
  WithDeadline(&context);
  auto reader = stub.Generate(&context, request);
  v1::GenerateResponse response;
  *tokens = 0;
  while (reader->Read(&response)) *tokens += response.token_ids_size();
  return reader->Finish();
}

TEST(InputLimitsTest, InvalidUtf8InAnyRequestFieldIsInvalidArgumentNamingIt) {
  const std::string state = testing::TempPath("input-limits-state");
  auto started = testing::LocalCluster::StartWith(testing::OneWorkerShard(testing::GoldenDir()),
                                                  {"--state-dir", state});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<testing::LocalCluster> cluster = *std::move(started);
  ASSERT_TRUE(cluster->WaitReady(absl::Seconds(60)).ok()) << cluster->Log("coordinator");
  v1::Inference::Stub& stub = cluster->stub();
  int tokens = 0;

  v1::GenerateRequest prompt;
  prompt.set_prompt(kBad);
  prompt.mutable_sampling()->set_max_tokens(2);
  grpc::Status st = Generate(stub, prompt, &tokens);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << st.error_message();
  EXPECT_THAT(st.error_message(), HasSubstr("prompt is not valid UTF-8 (bad byte at offset 1)"));

  v1::GenerateRequest chat;
  chat.add_messages()->set_role("user");
  chat.mutable_messages(0)->set_content(kBad);
  chat.mutable_sampling()->set_max_tokens(2);
  st = Generate(stub, chat, &tokens);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("messages[0].content is not valid UTF-8"));

  v1::SubmitJobRequest job;
  job.add_requests()->add_prompt_token_ids(5);
  job.mutable_requests(0)->mutable_sampling()->set_max_tokens(2);
  job.mutable_requests(0)->mutable_sampling()->add_stop(kBad);
  v1::Job submitted;
  grpc::ClientContext submit_context;
  WithDeadline(&submit_context);
  st = stub.SubmitJob(&submit_context, job, &submitted);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("requests[0].sampling.stop[0] is not valid UTF-8"));

  v1::GetJobRequest get;
  get.set_job_id(kBad);
  v1::Job got;
  grpc::ClientContext get_context;
  WithDeadline(&get_context);
  st = stub.GetJob(&get_context, get, &got);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), HasSubstr("job_id is not valid UTF-8"));

  // Still serving (the golden checkpoint has no tokenizer: ids).
  v1::GenerateRequest good;
  good.add_prompt_token_ids(5);
  good.mutable_sampling()->set_max_tokens(2);
  good.mutable_sampling()->set_ignore_eos(true);
  st = Generate(stub, good, &tokens);
  EXPECT_TRUE(st.ok()) << st.error_message();
  EXPECT_EQ(tokens, 2);
  cluster.reset();
  std::filesystem::remove_all(state);
}

}  // namespace
}  // namespace mmx
