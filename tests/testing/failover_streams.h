// Streams that live through a failover: concurrent streaming Generate calls (greedy and seeded,
// of different lengths) run once undisturbed and once while a test disturbs the cluster; every
// disturbed stream must return exactly the undisturbed tokens, log-probabilities within 1e-4.
// Shared by tests/integration/failover_test.cc and the fault harness (tests/faults/).
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "mmx/v1/inference.grpc.pb.h"
#include "tests/testing/local_cluster.h"

namespace mmx::testing {

// One streaming Generate, read a response at a time.
class Stream {
 public:
  Stream(v1::Inference::Stub& stub, const std::vector<int32_t>& prompt, int max_tokens, float temperature,
         uint64_t seed, absl::Duration deadline = absl::Seconds(120)) {
    context_.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(deadline));
    v1::GenerateRequest request;
    request.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
    request.mutable_sampling()->set_max_tokens(max_tokens);
    request.mutable_sampling()->set_temperature(temperature);
    request.mutable_sampling()->set_seed(seed);
    request.mutable_sampling()->set_logprobs(1);
    request.mutable_sampling()->set_ignore_eos(true);
    reader_ = stub.Generate(&context_, request);
  }
  // Reads one response; false at the end of the stream.
  bool ReadOne() {
    v1::GenerateResponse response;
    if (!reader_->Read(&response)) return false;
    const absl::Time now = absl::Now();
    if (last_ != absl::InfinitePast()) max_gap = std::max(max_gap, now - last_);
    last_ = now;
    tokens.insert(tokens.end(), response.token_ids().begin(), response.token_ids().end());
    logprobs.insert(logprobs.end(), response.logprobs().begin(), response.logprobs().end());
    if (!response.finish_reason().empty()) finish_reason = response.finish_reason();
    return true;
  }
  // Cancels the call, as a client that goes away does.
  void Cancel() { context_.TryCancel(); }
  grpc::Status ReadToEnd() {
    while (ReadOne()) {
    }
    return reader_->Finish();
  }

  std::vector<int32_t> tokens;
  std::vector<float> logprobs;
  std::string finish_reason;
  absl::Duration max_gap;  // the longest wait between two responses: the pause a client saw

 private:
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientReader<v1::GenerateResponse>> reader_;
  absl::Time last_ = absl::InfinitePast();
};

struct StreamCase {
  std::vector<int32_t> prompt;
  int max_tokens;
  float temperature;
  uint64_t seed;
};

// A greedy request with a long prompt (replayed in several chunks), a short greedy one and a
// seeded sampled one; `scale` multiplies the lengths (a fault that lasts seconds needs
// generations that last longer).
inline std::vector<StreamCase> FailoverCases(int scale = 1) {
  std::vector<int32_t> long_prompt;
  for (int t = 0; t < 300; ++t) long_prompt.push_back((t * 37 + 11) % 500);
  return {{long_prompt, 150 * scale, 0.f, 0}, {{1, 2, 3}, 200 * scale, 0.f, 0}, {{7, 8, 9, 10}, 200 * scale, 0.9f, 4242}};
}

// How the coordinator's log begins the line of a failover that paused every FailoverCases
// stream; the cause follows ("worker 'b' lost: ...").
inline std::string PausedEveryCase() {
  return absl::StrCat("failover: ", FailoverCases().size(), " running sequences paused (");
}

// The longest wait between two responses of any stream, undisturbed and disturbed.
struct Pauses {
  absl::Duration undisturbed;
  absl::Duration disturbed;
};

// Runs `cases` undisturbed, then again with `disturb` applied once every stream has tokens, and
// checks each disturbed stream against its undisturbed run. Returns the longest pauses (zero if
// a check failed first).
inline Pauses ExpectSameOutputsThrough(LocalCluster& c, const std::vector<StreamCase>& cases,
                                       const std::function<void()>& disturb) {
  EXPECT_TRUE(c.WaitReady(absl::Seconds(60)).ok()) << c.Log("coordinator");
  std::vector<std::unique_ptr<Stream>> clean, streams;
  for (const StreamCase& k : cases) clean.push_back(std::make_unique<Stream>(c.stub(), k.prompt, k.max_tokens, k.temperature, k.seed));
  {
    std::vector<grpc::Status> ended(clean.size());
    std::vector<std::thread> readers;
    for (size_t i = 0; i < clean.size(); ++i) readers.emplace_back([&, i] { ended[i] = clean[i]->ReadToEnd(); });
    for (std::thread& t : readers) t.join();
    for (const grpc::Status& st : ended) {
      EXPECT_TRUE(st.ok()) << st.error_message();
      if (!st.ok()) return {};
    }
  }
  for (const StreamCase& k : cases) streams.push_back(std::make_unique<Stream>(c.stub(), k.prompt, k.max_tokens, k.temperature, k.seed));
  // Every stream has tokens (all are running: the long prompt is prefilled), then the fault.
  for (auto& s : streams) {
    if (!s->ReadOne()) {
      ADD_FAILURE() << "a stream ended before the fault";
      return {};
    }
  }
  disturb();
  // Each stream read on its own thread: a stream's gaps are then its own, not the time spent
  // reading the others.
  std::vector<grpc::Status> ended(streams.size());
  {
    std::vector<std::thread> readers;
    for (size_t i = 0; i < streams.size(); ++i) readers.emplace_back([&, i] { ended[i] = streams[i]->ReadToEnd(); });
    for (std::thread& t : readers) t.join();
  }
  Pauses pauses;
  for (const auto& s : clean) pauses.undisturbed = std::max(pauses.undisturbed, s->max_gap);
  for (size_t i = 0; i < streams.size(); ++i) {
    SCOPED_TRACE(i);
    const grpc::Status& st = ended[i];
    EXPECT_TRUE(st.ok()) << st.error_message();
    EXPECT_EQ(streams[i]->finish_reason, "length");
    EXPECT_EQ(streams[i]->tokens, clean[i]->tokens);
    EXPECT_EQ(streams[i]->logprobs.size(), clean[i]->logprobs.size());
    float worst = 0;
    for (size_t t = 0; t < std::min(clean[i]->logprobs.size(), streams[i]->logprobs.size()); ++t) {
      worst = std::max(worst, std::abs(streams[i]->logprobs[t] - clean[i]->logprobs[t]));
    }
    EXPECT_LE(worst, 1e-4f);
    pauses.disturbed = std::max(pauses.disturbed, streams[i]->max_gap);
  }
  return pauses;
}

// Polls the job until it SUCCEEDED (GetJob has no wait) or `timeout` passes; the last state seen.
inline v1::Job AwaitJobSucceeded(v1::Inference::Stub& stub, const std::string& job_id,
                                 absl::Duration timeout = absl::Seconds(120)) {
  v1::Job done;
  for (const absl::Time give_up = absl::Now() + timeout; absl::Now() < give_up;) {
    grpc::ClientContext context;
    v1::GetJobRequest get;
    get.set_job_id(job_id);
    if (stub.GetJob(&context, get, &done).ok() && done.state() == v1::JOB_STATE_SUCCEEDED) break;
    absl::SleepFor(absl::Milliseconds(50));  // between polls
  }
  return done;
}

}  // namespace mmx::testing
