// Integration: TLS on the gRPC channels (issue 14, point 1), with real processes and real
// certificates from deploy/certs.sh. A TLS cluster and a mutual-TLS cluster serve the golden ids;
// a plain-text client of a TLS coordinator, and a client without a certificate under mutual TLS,
// fail cleanly; `serve` on a non-loopback address without TLS exits naming both fixes; the mmx
// client speaks TLS with --tls-ca; the HTTP API serves HTTPS with the same files.
#include <httplib.h>

#include <chrono>
#include <csignal>
#include <fstream>
#include <regex>
#include <thread>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"
#include "tests/testing/golden_reader.h"
#include "tests/testing/local_cluster.h"
#include "tests/testing/process.h"
#include "tests/testing/shards.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;

// This test's own HTTPS clients write to servers that hang up on them (a refused client
// certificate): EPIPE for that call, not the whole test process killed by SIGPIPE.
const bool kSigpipeIgnored = [] {
  std::signal(SIGPIPE, SIG_IGN);
  return true;
}();

// The CA and certificates, made once per test binary by the real script.
const std::string& Certs() {
  static const std::string dir = [] {
    const std::string d = testing::TempPath("tls-certs");
    const testing::ProcessResult made =
        testing::RunShell(absl::StrCat("bash ", MMX_SOURCE_DIR, "/deploy/certs.sh ", d), absl::Seconds(60));
    EXPECT_EQ(made.exit_code, 0) << made.output << made.err;
    return d;
  }();
  return dir;
}
std::string Cert(const std::string& file) { return Certs() + "/" + file; }

std::shared_ptr<grpc::ChannelCredentials> ClientCredentials(bool with_certificate) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = testing::ReadFile(Cert("ca.crt"));
  if (with_certificate) {
    options.pem_cert_chain = testing::ReadFile(Cert("client.crt"));
    options.pem_private_key = testing::ReadFile(Cert("client.key"));
  }
  return grpc::SslCredentials(options);
}

// p5's prompt and the official greedy ids.
std::pair<std::vector<int32_t>, std::vector<int32_t>> GoldenP5() {
  std::ifstream in(testing::GoldenDir() + "/golden/prompts.json");
  const auto prompts = nlohmann::json::parse(in);
  const auto decode = testing::ReadGolden(testing::GoldenDir() + "/golden/decode.safetensors");
  const auto& ids = decode.at("p5.generated_ids").i64;
  return {prompts["prompts"]["p5"].get<std::vector<int32_t>>(), std::vector<int32_t>(ids.begin(), ids.end())};
}

void ExpectGoldenOver(v1::Inference::Stub& stub) {
  const auto [prompt, ids] = GoldenP5();
  auto out = testing::GenerateOnce(stub, prompt, static_cast<int>(ids.size()));
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(out->tokens, ids);
}

TEST(TlsTest, ATlsClusterServesTheGoldenIdsAndRefusesPlainText) {
  auto cluster = testing::LocalCluster::StartSecured(
      testing::DisaggregatedShard(testing::GoldenDir()),
      {"--tls-cert", Cert("coordinator.crt"), "--tls-key", Cert("coordinator.key")}, {"--tls-ca", Cert("ca.crt")},
      ClientCredentials(false));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator") << (*cluster)->Log("stage0");
  ExpectGoldenOver((*cluster)->stub());

  // Plain text against TLS: the call fails (no hang), saying it could not connect.
  auto plain = v1::Inference::NewStub(grpc::CreateChannel((*cluster)->address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ClusterStatus status;
  const grpc::Status refused = plain->GetClusterStatus(&context, v1::GetClusterStatusRequest(), &status);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();

  // The mmx client with --tls-ca.
  const testing::ProcessResult client = testing::RunToExit(
      {testing::BinaryPath("mmx"), "status", "--server", (*cluster)->address(), "--tls-ca", Cert("ca.crt")},
      absl::Seconds(30));
  EXPECT_EQ(client.exit_code, 0) << client.output;
  EXPECT_THAT(client.output, HasSubstr("cluster: ready"));
  const testing::ProcessResult no_ca = testing::RunToExit(
      {testing::BinaryPath("mmx"), "status", "--server", (*cluster)->address(), "--tls-ca", Cert("missing.crt")},
      absl::Seconds(30));
  EXPECT_NE(no_ca.exit_code, 0);
  EXPECT_THAT(no_ca.output, HasSubstr("--tls-ca: cannot read"));

  // The Python client (python3-grpcio) with the same option.
  const std::string stubs = std::string(MMX_BINARY_DIR) + "/python";
  const testing::ProcessResult python = testing::RunToExit(
      {"/usr/bin/env", "MMX_PY_STUBS=" + stubs, "/usr/bin/python3", std::string(MMX_SOURCE_DIR) + "/clients/python/mmx_client.py",
       "--server", (*cluster)->address(), "--tls-ca", Cert("ca.crt"), "status"},
      absl::Seconds(60));
  EXPECT_EQ(python.exit_code, 0) << python.output;
  EXPECT_THAT(python.output, HasSubstr("ready"));
}

TEST(TlsTest, AMutualTlsClusterServesTheGoldenIdsAndRefusesAClientWithoutACertificate) {
  auto cluster = testing::LocalCluster::StartSecured(
      testing::OneWorkerShard(testing::GoldenDir()),
      {"--tls-cert", Cert("coordinator.crt"), "--tls-key", Cert("coordinator.key"), "--tls-client-ca", Cert("ca.crt")},
      {"--tls-ca", Cert("ca.crt"), "--tls-cert", Cert("worker.crt"), "--tls-key", Cert("worker.key")},
      ClientCredentials(true));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator") << (*cluster)->Log("all");
  ExpectGoldenOver((*cluster)->stub());

  auto anonymous = v1::Inference::NewStub(grpc::CreateChannel((*cluster)->address(), ClientCredentials(false)));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  v1::ClusterStatus status;
  const grpc::Status refused = anonymous->GetClusterStatus(&context, v1::GetClusterStatusRequest(), &status);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::UNAVAILABLE) << refused.error_message();
}

// The OpenAI-compatible HTTP API with the same files: HTTPS, and under mutual TLS a client
// without a certificate gets no answer; plain HTTP to the HTTPS port gets none either.
TEST(TlsTest, TheHttpApiServesHttpsAndUnderMutualTlsWantsAClientCertificate) {
  auto cluster = testing::LocalCluster::StartSecured(
      testing::OneWorkerShard(testing::GoldenDir()),
      {"--tls-cert", Cert("coordinator.crt"), "--tls-key", Cert("coordinator.key"), "--tls-client-ca", Cert("ca.crt"),
       "--http-listen", "127.0.0.1:0", "--served-model-name", "tiny-a"},
      {"--tls-ca", Cert("ca.crt"), "--tls-cert", Cert("worker.crt"), "--tls-key", Cert("worker.key")},
      ClientCredentials(true));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  std::smatch m;
  const std::string log = (*cluster)->Log("coordinator");
  ASSERT_TRUE(std::regex_search(log, m, std::regex(R"(HTTP API on https://127\.0\.0\.1:(\d+)/v1)"))) << log;
  const int port = std::stoi(m[1]);

  httplib::SSLClient with_cert("127.0.0.1", port, Cert("client.crt"), Cert("client.key"));
  with_cert.set_ca_cert_path(Cert("ca.crt"));
  with_cert.enable_server_certificate_verification(true);
  httplib::Result models = with_cert.Get("/v1/models");
  ASSERT_TRUE(models) << httplib::to_string(models.error());
  EXPECT_EQ(models->status, 200);
  EXPECT_THAT(models->body, HasSubstr("tiny-a"));
  httplib::Result completion = with_cert.Post("/v1/completions", R"({"prompt": [5, 17, 42], "max_tokens": 3})",
                                              "application/json");
  ASSERT_TRUE(completion) << httplib::to_string(completion.error());
  EXPECT_EQ(completion->status, 200) << completion->body;

  // A client that hangs up on an HTTPS stream after its first chunk: the coordinator notices
  // (the socket's hang-up; a write that races it fails with EPIPE, as mmx-coord ignores
  // SIGPIPE), cancels the request, and goes on serving.
  httplib::Request stream;
  stream.method = "POST";
  stream.path = "/v1/completions";
  stream.body = R"({"prompt": [5, 17, 42], "max_tokens": 3000, "ignore_eos": true, "stream": true})";
  stream.set_header("Content-Type", "application/json");
  int chunks = 0;
  stream.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) { return ++chunks < 2; };
  httplib::Response cut;
  httplib::Error error = httplib::Error::Success;
  EXPECT_FALSE(with_cert.send(stream, cut, error)) << "the client stopped reading; the call cannot succeed";
  EXPECT_EQ(chunks, 2);
  int running = -1;
  for (const absl::Time give_up = absl::Now() + absl::Seconds(10); absl::Now() < give_up;) {
    absl::StatusOr<v1::ClusterStatus> st = (*cluster)->Status();
    ASSERT_TRUE(st.ok()) << "the coordinator is gone: " << st.status() << (*cluster)->Log("coordinator");
    if ((running = st->running_requests()) == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));  // the status is polled: no event to wait on
  }
  EXPECT_EQ(running, 0) << "the hung-up stream's request still runs";
  httplib::Result again = with_cert.Get("/v1/models");
  ASSERT_TRUE(again) << httplib::to_string(again.error());
  EXPECT_EQ(again->status, 200);

  httplib::SSLClient anonymous("127.0.0.1", port);
  anonymous.set_ca_cert_path(Cert("ca.crt"));
  anonymous.enable_server_certificate_verification(true);
  anonymous.set_read_timeout(std::chrono::seconds(5));
  EXPECT_FALSE(anonymous.Get("/v1/models")) << "no client certificate, yet an answer";
  httplib::Client plain("127.0.0.1", port);
  plain.set_read_timeout(std::chrono::seconds(5));
  httplib::Result plain_reply = plain.Get("/v1/models");
  EXPECT_TRUE(!plain_reply || plain_reply->status != 200) << "plain HTTP answered on the HTTPS port";
}

TEST(TlsTest, ServeRefusesPlainTextOnANonLoopbackAddressNamingBothFixes) {
  const testing::ProcessResult refused = testing::RunToExit(
      {testing::BinaryPath("mmx-coord"), "serve", "--shard-config", "/nonexistent.yaml", "--listen", "0.0.0.0:0"},
      absl::Seconds(30));
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.output, HasSubstr("refusing to serve plain text on 0.0.0.0:0"));
  EXPECT_THAT(refused.output, HasSubstr("--tls-cert FILE --tls-key FILE"));
  EXPECT_THAT(refused.output, HasSubstr("--insecure"));
  // With --insecure it goes on (and fails later, on the missing shard config).
  const testing::ProcessResult insecure = testing::RunToExit(
      {testing::BinaryPath("mmx-coord"), "serve", "--shard-config", "/nonexistent.yaml", "--listen", "0.0.0.0:0",
       "--insecure"},
      absl::Seconds(30));
  EXPECT_NE(insecure.exit_code, 0);
  EXPECT_THAT(insecure.output, ::testing::Not(HasSubstr("refusing")));
  EXPECT_THAT(insecure.output, HasSubstr("/nonexistent.yaml"));
  // The HTTP API's address is held to the same rule.
  const testing::ProcessResult http = testing::RunToExit(
      {testing::BinaryPath("mmx-coord"), "serve", "--shard-config", "/nonexistent.yaml", "--http-listen", "0.0.0.0:0"},
      absl::Seconds(30));
  EXPECT_NE(http.exit_code, 0);
  EXPECT_THAT(http.output, HasSubstr("refusing to serve plain text on 0.0.0.0:0"));
}

}  // namespace
}  // namespace mmx
