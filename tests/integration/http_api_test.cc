// Integration: the OpenAI-compatible HTTP API (`serve --http-listen`) of a real cluster on the
// golden tiny-a checkpoint with mmx-mkmodel's test tokenizer. What HTTP returns is held to what
// gRPC returns for the same request (one scheduler, one model); the Server-Sent Events framing is
// checked byte by byte; a client that hangs up frees its sequence; and the official OpenAI SDK
// for Node (tests/http/openai_sdk_check.mjs) drives the same server.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "absl/strings/str_cat.h"
#include "base/npy.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/tokenizer/tokenizer_maker.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"
#include "tests/testing/http_get.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/streamed_generate.h"
#include "tests/testing/process.h"
#include "tests/testing/shards.h"
#include "tests/testing/scratch_dir.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;
using Json = nlohmann::json;

// The raw-socket clients here hang up on purpose; a write of theirs to a closed connection must
// be EPIPE, not the test process killed by SIGPIPE.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

const std::string kModel = testing::GoldenDir();

const std::string& TokenizerFile() {
  static const std::string path = [] {
    const std::string p = testing::ScratchDir("http-tok") + "/tokenizer.json";
    std::ofstream(p) << tokenizer::MakeTestTokenizerJson(512);
    return p;
  }();
  return path;
}

// The HTTP API's port, from the coordinator's "OpenAI-compatible HTTP API on http://H:P/v1" line.
int HttpPort(const std::string& log) {
  std::smatch m;
  static const std::regex line(R"(HTTP API on https?://[^ ]+:(\d+)/v1)");
  return std::regex_search(log, m, line) ? std::stoi(m[1]) : -1;
}

using testing::Streamed;

Streamed GrpcGenerate(v1::Inference::Stub& stub, const v1::GenerateRequest& request) {
  return testing::StreamGenerate(stub, request);
}

class HttpApiTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto c = testing::LocalCluster::StartWith(testing::OneWorkerShard(kModel),
                                              {"--tokenizer", TokenizerFile(), "--http-listen", "127.0.0.1:0",
                                               "--served-model-name", "tiny-a", "--max-tokens", "4000",
                                               "--metrics-listen", "off"});
    ASSERT_TRUE(c.ok()) << c.status();
    cluster_ = c->release();
    ASSERT_TRUE(cluster_->WaitReady(absl::Seconds(120)).ok()) << cluster_->Log("coordinator");
    port_ = HttpPort(cluster_->Log("coordinator"));
    ASSERT_GT(port_, 0) << cluster_->Log("coordinator");
  }
  static void TearDownTestSuite() {
    delete cluster_;
    cluster_ = nullptr;
  }
  static httplib::Client Client() {
    httplib::Client client("127.0.0.1", port_);
    client.set_read_timeout(std::chrono::seconds(60));
    return client;
  }
  static httplib::Result Post(const std::string& path, const Json& body) {
    return Client().Post(path.c_str(), body.dump(), "application/json");
  }
  // Waits until the coordinator runs `n` requests (its status; there is no event to wait on).
  static int WaitRunning(int n) {
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    int running = -1;
    while (absl::Now() < give_up) {
      absl::StatusOr<v1::ClusterStatus> st = cluster_->Status();
      if (st.ok() && (running = st->running_requests()) == n) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return running;
  }
  static testing::LocalCluster* cluster_;
  static int port_;
};
testing::LocalCluster* HttpApiTest::cluster_ = nullptr;
int HttpApiTest::port_ = -1;

const Json kMessages = Json::array({{{"role", "system"}, {"content", "You are terse."}},
                                    {{"role", "user"}, {"content", "Name three colours."}}});

v1::GenerateRequest GrpcChat(int max_tokens) {
  v1::GenerateRequest r;
  for (const Json& m : kMessages) {
    v1::ChatMessage* message = r.add_messages();
    message->set_role(m["role"]);
    message->set_content(m["content"]);
  }
  r.mutable_sampling()->set_max_tokens(max_tokens);
  r.mutable_sampling()->set_ignore_eos(true);
  return r;
}

TEST_F(HttpApiTest, GreedyChatThroughHttpEqualsGrpc) {
  httplib::Result res = Post("/v1/chat/completions", {{"model", "tiny-a"}, {"messages", kMessages},
                                                      {"max_tokens", 20}, {"temperature", 0}, {"ignore_eos", true}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("application/json"));
  const Json j = Json::parse(res->body);
  const Streamed grpc = GrpcGenerate(cluster_->stub(), GrpcChat(20));
  ASSERT_TRUE(grpc.status.ok()) << grpc.status.error_message();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["model"], "tiny-a");
  EXPECT_EQ(j["choices"][0]["message"]["role"], "assistant");
  EXPECT_EQ(j["choices"][0]["message"]["content"], grpc.text);
  EXPECT_FALSE(grpc.text.empty());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["completion_tokens"], 20);
  EXPECT_EQ(j["usage"]["total_tokens"], j["usage"]["prompt_tokens"].get<int>() + 20);
}

// The stream as bytes: `data: {json}` events separated by blank lines, the role first, the
// finish reason, the usage chunk (asked for), then `data: [DONE]`; the deltas add up to the
// whole reply.
TEST_F(HttpApiTest, StreamedChatIsServerSentEvents) {
  const Json body = {{"messages", kMessages}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true},
                     {"stream", true}, {"stream_options", {{"include_usage", true}}}};
  httplib::Result res = Post("/v1/chat/completions", body);
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_THAT(res->get_header_value("Content-Type"), HasSubstr("text/event-stream"));
  ASSERT_TRUE(absl::EndsWith(res->body, "data: [DONE]\n\n")) << res->body;
  std::vector<std::string> events = absl::StrSplit(res->body, "\n\n", absl::SkipEmpty());
  ASSERT_GE(events.size(), 4u);
  std::string content;
  std::vector<Json> chunks;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    ASSERT_TRUE(absl::StartsWith(events[i], "data: ")) << events[i];
    ASSERT_EQ(events[i].find('\n'), std::string::npos) << "one line per event: " << events[i];
    chunks.push_back(Json::parse(events[i].substr(6)));
    EXPECT_EQ(chunks.back()["object"], "chat.completion.chunk");
    EXPECT_EQ(chunks.back()["id"], chunks.front()["id"]);
  }
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  for (const Json& c : chunks) {
    if (!c["choices"].empty() && c["choices"][0]["delta"].contains("content")) {
      content += c["choices"][0]["delta"]["content"].get<std::string>();
    }
  }
  const Json& finish = chunks[chunks.size() - 2];
  EXPECT_EQ(finish["choices"][0]["finish_reason"], "length");
  const Json& usage = chunks.back();
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 12);
  const Streamed grpc = GrpcGenerate(cluster_->stub(), GrpcChat(12));
  EXPECT_EQ(content, grpc.text);
}

TEST_F(HttpApiTest, CompletionFromTokenIdsWithLogprobsEqualsGrpc) {
  httplib::Result res = Post("/v1/completions", {{"model", "tiny-a"}, {"prompt", {5, 17, 42}}, {"max_tokens", 8},
                                                 {"temperature", 0}, {"logprobs", 3}, {"ignore_eos", true}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  const Json j = Json::parse(res->body);
  v1::GenerateRequest r;
  for (int id : {5, 17, 42}) r.add_prompt_token_ids(id);
  r.mutable_sampling()->set_max_tokens(8);
  r.mutable_sampling()->set_logprobs(3);
  r.mutable_sampling()->set_ignore_eos(true);
  const Streamed grpc = GrpcGenerate(cluster_->stub(), r);
  ASSERT_TRUE(grpc.status.ok());
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], grpc.text);
  const Json& lp = j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), grpc.logprobs.size());
  for (size_t i = 0; i < grpc.logprobs.size(); ++i) {
    EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), grpc.logprobs[i], 1e-6);
    // OpenAI's layout maps token strings to log-probabilities: alternatives that decode to the
    // same string (parts of one character, U+FFFD each) share one entry.
    EXPECT_GE(lp["top_logprobs"][i].size(), 1u);
    EXPECT_LE(lp["top_logprobs"][i].size(), 3u);
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], 3);
}

TEST_F(HttpApiTest, ErrorsAreOpenAisShapeWithTheirStatus) {
  auto error_of = [](const httplib::Result& res, int status) {
    EXPECT_TRUE(res);
    if (!res) return Json();
    EXPECT_EQ(res->status, status) << res->body;
    const Json j = Json::parse(res->body, nullptr, false);
    EXPECT_TRUE(j.contains("error")) << res->body;
    return j.value("error", Json::object());
  };
  Json e = error_of(Client().Post("/v1/chat/completions", "{not json", "application/json"), 400);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("not valid JSON"));
  e = error_of(Post("/v1/chat/completions", {{"messages", kMessages}, {"n", 2}}), 400);
  EXPECT_EQ(e["param"], "n");
  e = error_of(Post("/v1/chat/completions", {{"messages", kMessages}, {"max_tokens", 5000}}), 400);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("max_tokens is 5000; this server allows at most 4000"));
  e = error_of(Post("/v1/chat/completions", {{"model", "gpt-4o"}, {"messages", kMessages}}), 404);
  EXPECT_EQ(e["code"], "model_not_found");
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("serves 'tiny-a'"));
  e = error_of(Post("/v1/completions", {{"prompt", {1, 100000}}}), 400);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("outside the vocabulary"));
  e = error_of(Client().Get("/v1/nothing"), 404);
  EXPECT_THAT(e["message"].get<std::string>(), HasSubstr("/v1/chat/completions"));
  e = error_of(Client().Get("/v1/models/other"), 404);

  httplib::Result models = Client().Get("/v1/models");
  ASSERT_TRUE(models);
  EXPECT_EQ(Json::parse(models->body)["data"][0]["id"], "tiny-a");
  httplib::Result health = Client().Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  httplib::Result metrics = Client().Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_THAT(metrics->body, HasSubstr("mmx_requests_rejected_total"));
}

// The prompt's own log-probabilities (evaluation harnesses' loglikelihood call): through gRPC
// (sampling.prompt_logprobs) and through HTTP (completions with echo, logprobs, max_tokens 0)
// they are the log-softmax of `mmx-coord run --logits-out`'s rows at the next prompt token.
TEST_F(HttpApiTest, PromptLogprobsEqualTheLogSoftmaxOfRunsLogits) {
  const std::vector<int32_t> prompt = {446, 348, 230, 12, 113, 5, 17, 42};
  const std::string npy = testing::TempPath("prompt-logits.npy");
  const testing::ProcessResult run = testing::RunToExit(
      {testing::BinaryPath("mmx-coord"), "run", "--model", kModel, "--prompt-ids", "446,348,230,12,113,5,17,42",
       "--max-tokens", "1", "--kv-dtype", "fp32", "--logits-out", npy},  // as the test cluster serves
      absl::Seconds(120));
  ASSERT_EQ(run.exit_code, 0) << run.output;
  absl::StatusOr<NpyArray> logits = ReadNpyF32(npy);
  ASSERT_TRUE(logits.ok()) << logits.status();
  const int64_t vocab = logits->shape.back();
  std::vector<double> expected;  // prompt tokens 1..P-1
  for (size_t i = 0; i + 1 < prompt.size(); ++i) {
    const float* row = logits->data.data() + i * vocab;
    double max = row[0], sum = 0;
    for (int64_t v = 0; v < vocab; ++v) max = std::max<double>(max, row[v]);
    for (int64_t v = 0; v < vocab; ++v) sum += std::exp(row[v] - max);
    expected.push_back(row[prompt[i + 1]] - max - std::log(sum));
  }

  v1::GenerateRequest r;
  for (int32_t id : prompt) r.add_prompt_token_ids(id);
  r.mutable_sampling()->set_max_tokens(2);
  r.mutable_sampling()->set_prompt_logprobs(2);
  grpc::ClientContext context;
  auto reader = cluster_->stub().Generate(&context, r);
  v1::GenerateResponse first;
  ASSERT_TRUE(reader->Read(&first));
  EXPECT_THAT(first.prompt_token_ids(), ::testing::ElementsAreArray(prompt));
  ASSERT_EQ(first.prompt_logprobs_size(), static_cast<int>(expected.size()));
  ASSERT_EQ(first.prompt_top_logprobs_size(), static_cast<int>(expected.size()));
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(first.prompt_logprobs(static_cast<int>(i)), expected[i], 1e-4) << "prompt token " << i + 1;
    EXPECT_EQ(first.prompt_top_logprobs(static_cast<int>(i)).token_ids_size(), 2);
  }
  for (v1::GenerateResponse more; reader->Read(&more);) EXPECT_EQ(more.prompt_logprobs_size(), 0) << "sent twice";
  EXPECT_TRUE(reader->Finish().ok());

  httplib::Result res = Post("/v1/completions", {{"prompt", prompt}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}});
  ASSERT_TRUE(res) << httplib::to_string(res.error());
  ASSERT_EQ(res->status, 200) << res->body;
  const Json j = Json::parse(res->body);
  const Json& lp = j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["token_logprobs"].size(), prompt.size()) << "the prompt only: max_tokens 0";
  EXPECT_TRUE(lp["token_logprobs"][0].is_null());
  EXPECT_TRUE(lp["top_logprobs"][0].is_null());
  for (size_t i = 0; i < expected.size(); ++i) {
    EXPECT_NEAR(lp["token_logprobs"][i + 1].get<double>(), expected[i], 1e-4) << "prompt token " << i + 1;
  }
  EXPECT_EQ(j["usage"]["completion_tokens"], 0);
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt.size());
  EXPECT_EQ(j["choices"][0]["text"].get<std::string>().empty(), false);
}

// Sends a completion on a raw socket and closes it once the request runs: the coordinator
// must cancel it and free its sequence, streamed or not.
void HangUpWhileRunning(int port, bool stream, const std::function<int(int)>& wait_running) {
  const int fd = testing::ConnectLoopback(port);
  ASSERT_GE(fd, 0);
  const std::string body = Json{{"prompt", "hang up on me"}, {"max_tokens", 3900}, {"ignore_eos", true},
                                {"stream", stream}}.dump();
  const std::string request = absl::StrCat("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                           "Content-Length: ", body.size(), "\r\n\r\n", body);
  ASSERT_EQ(write(fd, request.data(), request.size()), static_cast<ssize_t>(request.size()));
  EXPECT_EQ(wait_running(1), 1) << "the request never ran";
  close(fd);
  EXPECT_EQ(wait_running(0), 0) << "the request of a client that hung up still holds a sequence";
}

TEST_F(HttpApiTest, ClientHangingUpCancelsItsRequest) {
  HangUpWhileRunning(port_, /*stream=*/false, WaitRunning);
  HangUpWhileRunning(port_, /*stream=*/true, WaitRunning);
  EXPECT_THAT(cluster_->Log("coordinator"), ::testing::Not(HasSubstr("Check failed")));
}

// The official OpenAI SDK for Node (npm package openai, installed into the build folder by the
// node_packages_install fixture) against this cluster, one with API keys and room for one running
// and one waiting request, and one whose workers never come.
TEST_F(HttpApiTest, OfficialOpenAiSdkForNode) {
  const std::string dir = testing::TempPath("http-sdk");
  std::filesystem::create_directories(dir);
  constexpr char kKey[] = "sdk-user-key-0123456789abcdef";
  std::ofstream(dir + "/keys.txt") << "sdk user " << kKey << "\n";
  const std::vector<std::string> http = {"--tokenizer", TokenizerFile(), "--http-listen", "127.0.0.1:0",
                                         "--served-model-name", "tiny-a", "--max-tokens", "4000",
                                         "--metrics-listen", "off"};
  std::vector<std::string> guarded_args = http;
  guarded_args.insert(guarded_args.end(), {"--api-keys", dir + "/keys.txt", "--max-concurrent", "1", "--max-queue", "1"});
  auto guarded = testing::LocalCluster::StartWith(testing::OneWorkerShard(kModel), guarded_args);
  ASSERT_TRUE(guarded.ok()) << guarded.status();
  auto unready = testing::LocalCluster::StartWith(testing::OneWorkerShard(kModel), http, false, 1, "",
                                                  /*start_workers=*/false);
  ASSERT_TRUE(unready.ok()) << unready.status();
  ASSERT_TRUE((*guarded)->WaitReady(absl::Seconds(120)).ok()) << (*guarded)->Log("coordinator");
  const int guarded_port = HttpPort((*guarded)->Log("coordinator"));
  int unready_port = -1;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(60); unready_port < 0 && absl::Now() < give_up;) {
    unready_port = HttpPort((*unready)->Log("coordinator"));  // its log is the only sign it listens
    if (unready_port < 0) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_GT(unready_port, 0) << (*unready)->Log("coordinator");

  const std::string command = absl::StrCat(
      "NODE_PATH=", MMX_BINARY_DIR, "/node/node_modules MMX_HTTP_BASE=http://127.0.0.1:", port_,
      "/v1 MMX_GUARDED_BASE=http://127.0.0.1:", guarded_port, "/v1 MMX_UNREADY_BASE=http://127.0.0.1:", unready_port,
      "/v1 MMX_API_KEY=", kKey, " node ", MMX_SOURCE_DIR, "/tests/http/openai_sdk_check.cjs");
  const testing::ProcessResult node = testing::RunShell(command, absl::Seconds(240));
  ASSERT_EQ(node.exit_code, 0) << node.out << node.err;
  const std::vector<std::string> lines = absl::StrSplit(node.out, '\n', absl::SkipEmpty());
  ASSERT_FALSE(lines.empty());
  const Json got = Json::parse(lines.back());

  // What the SDK got is what the gRPC API gives for the same requests.
  const Streamed chat = GrpcGenerate(cluster_->stub(), GrpcChat(20));
  EXPECT_EQ(got["chat"], chat.text);
  v1::GenerateRequest r;
  for (int id : {5, 17, 42}) r.add_prompt_token_ids(id);
  r.mutable_sampling()->set_max_tokens(8);
  r.mutable_sampling()->set_ignore_eos(true);
  const Streamed completion = GrpcGenerate(cluster_->stub(), r);
  EXPECT_EQ(got["completion"], completion.text);
  ASSERT_EQ(got["completion_logprobs"].size(), completion.logprobs.size());
  for (size_t i = 0; i < completion.logprobs.size(); ++i) {
    EXPECT_NEAR(got["completion_logprobs"][i].get<double>(), completion.logprobs[i], 1e-6);
  }
  std::filesystem::remove_all(dir);
}

// Resident memory of a process, from /proc (0 if it cannot be read).
int64_t RssBytes(pid_t pid) {
  std::ifstream status(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(status, line);) {
    if (absl::StartsWith(line, "VmRSS:")) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// 64 streaming clients at once, two rounds, against room for 4 running and 4 waiting: each
// request streams to its end or gets 429 at once, and the coordinator's memory does not grow
// from round to round.
TEST_F(HttpApiTest, SixtyFourStreamingClientsGetTheirStreamsOr429) {
  auto bounded = testing::LocalCluster::StartWith(
      testing::OneWorkerShard(kModel), {"--tokenizer", TokenizerFile(), "--http-listen", "127.0.0.1:0",
                                        "--served-model-name", "tiny-a", "--max-concurrent", "4", "--max-queue", "4",
                                        "--metrics-listen", "off"});
  ASSERT_TRUE(bounded.ok()) << bounded.status();
  ASSERT_TRUE((*bounded)->WaitReady(absl::Seconds(120)).ok()) << (*bounded)->Log("coordinator");
  const int port = HttpPort((*bounded)->Log("coordinator"));
  ASSERT_GT(port, 0);
  const pid_t coordinator = (*bounded)->Pid("coordinator");
  const std::string command = absl::StrCat("NODE_PATH=", MMX_BINARY_DIR, "/node/node_modules MMX_HTTP_BASE=http://127.0.0.1:",
                                           port, "/v1 MMX_CLIENTS=64 MMX_ROUNDS=2 MMX_TOKENS=4 node ",
                                           MMX_SOURCE_DIR, "/tests/http/load_check.cjs");
  const int64_t rss_before = RssBytes(coordinator);
  const testing::ProcessResult node = testing::RunShell(command, absl::Seconds(240));
  ASSERT_EQ(node.exit_code, 0) << node.out << node.err;
  const std::vector<std::string> lines = absl::StrSplit(node.out, '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u) << node.out;
  for (const std::string& line : lines) {
    std::cout << "load round: " << line << "\n";
    const Json round = Json::parse(line);
    EXPECT_GE(round["accepted"].get<int>(), 8) << "at least what runs and waits at once: " << line;
    EXPECT_GT(round["refused"].get<int>(), 0) << "64 at once cannot all fit: " << line;
  }
  const int64_t rss_after = RssBytes(coordinator);
  std::cout << "coordinator RSS " << rss_before << " -> " << rss_after << " bytes\n";
  EXPECT_LT(rss_after - rss_before, int64_t{64} << 20) << rss_before << " -> " << rss_after << " bytes";
  absl::StatusOr<v1::ClusterStatus> st = (*bounded)->Status();
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->running_requests(), 0);
}

}  // namespace
}  // namespace mmx
