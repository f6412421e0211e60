#include "coordinator/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <vector>

#include "coordinator/metrics_http.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/http_get.h"
#include "tests/testing/status_matchers.h"

namespace mmx::coordinator {
namespace {

using ::testing::HasSubstr;

TEST(MetricsTest, RendersCountersGaugesAndCumulativeHistograms) {
  Metrics m;
  m.RequestAccepted();
  m.RequestAccepted();
  m.RequestRejected("INVALID_ARGUMENT");
  m.RequestEnded("stop");
  m.PromptTokens(12);
  m.GeneratedTokens(5);
  m.SetQueueDepth(3);
  m.ObserveTimeToFirstToken(0.02);
  m.ObserveTimeToFirstToken(0.2);
  m.ObserveWorkerStep("stage0", 0.004);
  const std::string text = m.RenderPrometheus();
  EXPECT_THAT(text, HasSubstr("# TYPE mmx_requests_total counter\nmmx_requests_total 2\n"));
  EXPECT_THAT(text, HasSubstr("mmx_requests_rejected_total{code=\"INVALID_ARGUMENT\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mmx_requests_ended_total{outcome=\"stop\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mmx_prompt_tokens_total 12\n"));
  EXPECT_THAT(text, HasSubstr("mmx_generated_tokens_total 5\n"));
  EXPECT_THAT(text, HasSubstr("mmx_queue_depth 3\n"));
  // Buckets are cumulative: 0.02 is in le=0.025 and above, 0.2 from le=0.25.
  EXPECT_THAT(text, HasSubstr("mmx_time_to_first_token_seconds_bucket{le=\"0.01\"} 0\n"));
  EXPECT_THAT(text, HasSubstr("mmx_time_to_first_token_seconds_bucket{le=\"0.025\"} 1\n"));
  EXPECT_THAT(text, HasSubstr("mmx_time_to_first_token_seconds_bucket{le=\"0.25\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mmx_time_to_first_token_seconds_bucket{le=\"+Inf\"} 2\n"));
  EXPECT_THAT(text, HasSubstr("mmx_time_to_first_token_seconds_count 2\n"));
  EXPECT_THAT(text, HasSubstr("mmx_worker_step_seconds_bucket{worker=\"stage0\",le=\"0.005\"} 1\n"));
  const v1::ServingStats stats = m.Stats();
  EXPECT_EQ(stats.requests_total(), 2);
  EXPECT_EQ(stats.generated_tokens_total(), 5);
  EXPECT_DOUBLE_EQ(stats.worker_step_p50_s().at("stage0"), 0.004);
}

TEST(MetricsTest, QuantilesComeFromRecentObservations) {
  Histogram h({1, 2, 3});
  EXPECT_EQ(h.Quantile(0.5), 0);
  for (int i = 1; i <= 101; ++i) h.Observe(i);
  EXPECT_EQ(h.Quantile(0.5), 51);
  for (int i = 0; i < 5000; ++i) h.Observe(7);  // the window forgets the old ones
  EXPECT_EQ(h.Quantile(0.0), 7);
}

TEST(MetricsHttpServerTest, ServesMetricsHealthAndNotFound) {
  std::atomic<bool> healthy{false};
  auto server = MetricsHttpServer::Start("127.0.0.1:0", [] { return std::string("mmx_x 1\n"); },
                                         [&] { return healthy.load(); });
  ASSERT_THAT(server, testing::IsOk());
  const int port = (*server)->port();
  ASSERT_GT(port, 0);
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string metrics = testing::HttpGet(address, "/metrics");
  EXPECT_THAT(metrics, ::testing::StartsWith("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(metrics, HasSubstr("text/plain; version=0.0.4"));
  EXPECT_THAT(metrics, ::testing::EndsWith("\r\n\r\nmmx_x 1\n"));
  EXPECT_THAT(testing::HttpGet(address, "/healthz"), ::testing::StartsWith("HTTP/1.1 503"));
  healthy = true;
  EXPECT_THAT(testing::HttpGet(address, "/healthz"), ::testing::StartsWith("HTTP/1.1 200"));
  EXPECT_THAT(testing::HttpGet(address, "/other"), ::testing::StartsWith("HTTP/1.1 404"));
}

TEST(MetricsHttpServerTest, BadAddressesAreClearErrors) {
  auto none = [] { return std::string(); };
  auto yes = [] { return true; };
  EXPECT_THAT(MetricsHttpServer::Start("no-port", none, yes),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("HOST:PORT")));
  auto first = MetricsHttpServer::Start("127.0.0.1:0", none, yes);
  ASSERT_THAT(first, testing::IsOk());
  EXPECT_THAT(MetricsHttpServer::Start("127.0.0.1:" + std::to_string((*first)->port()), none, yes),
              testing::StatusIs(absl::StatusCode::kUnavailable, HasSubstr("cannot listen")));
}

// A connection to 127.0.0.1:port that has sent `bytes` and then nothing.
int Dawdle(int port, const std::string& bytes) {
  const int fd = testing::ConnectLoopback(port);
  EXPECT_GE(fd, 0);
  if (!bytes.empty()) {
    EXPECT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  }
  return fd;
}

// True while the server has neither answered nor closed `fd`.
bool StillWaiting(int fd) {
  pollfd p{fd, POLLIN, 0};
  return poll(&p, 1, 0) == 0;
}

TEST(MetricsHttpServerTest, SlowAndSilentClientsDoNotHoldUpAScrape) {
  auto server = MetricsHttpServer::Start("127.0.0.1:0", [] { return std::string("mmx_x 1\n"); },
                                         [] { return true; });
  ASSERT_THAT(server, testing::IsOk());
  const int port = (*server)->port();
  // Fewer than the server's threads: one silent, others stuck partway through a request head.
  std::vector<int> slow = {Dawdle(port, ""), Dawdle(port, "GET /metr"),
                           Dawdle(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n")};
  ASSERT_LT(static_cast<int>(slow.size()), MetricsHttpServer::kThreads);
  EXPECT_THAT(testing::HttpGet("127.0.0.1:" + std::to_string(port), "/metrics"),
              ::testing::EndsWith("mmx_x 1\n"));
  // Served while every slow client was still being waited for (a one-connection-at-a-time
  // server answers only after dropping them, at its read timeout).
  for (int fd : slow) {
    EXPECT_TRUE(StillWaiting(fd));
    close(fd);
  }
}

TEST(MetricsHttpServerTest, MalformedRequestsAreRefusedAndTheServerGoesOn) {
  auto server = MetricsHttpServer::Start("127.0.0.1:0", [] { return std::string("mmx_x 1\n"); },
                                         [] { return true; });
  ASSERT_THAT(server, testing::IsOk());
  const int port = (*server)->port();
  for (const std::string& garbage :
       {std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),  // a TLS hello
        "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n"}) {
    const int fd = Dawdle(port, garbage);
    shutdown(fd, SHUT_WR);  // nothing more comes: the server answers (or not) and closes
    std::string response;
    char buf[4096];
    for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;) response.append(buf, static_cast<size_t>(n));
    close(fd);
    // Refused (4xx) or dropped: never served, never a crash.
    EXPECT_THAT(response, ::testing::AnyOf("", ::testing::StartsWith("HTTP/1.1 4"))) << garbage.substr(0, 40);
  }
  EXPECT_THAT(testing::HttpGet("127.0.0.1:" + std::to_string(port), "/metrics"),
              ::testing::EndsWith("mmx_x 1\n"));
}

}  // namespace
}  // namespace mmx::coordinator
