// The scheduler's test fixture: a worker the test plays over InprocTransport, a real Cluster
// (its control session driven directly), a real data plane in memory, no processes.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "coordinator/scheduler.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plan/shard_config.h"
#include "tests/testing/golden.h"
#include "tests/testing/status_matchers.h"
#include "transport/inproc_transport.h"
#include "transport/message_keys.h"

namespace mmx::coordinator::scheduler_testing {


using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;
using transport::InboxKey;
using transport::MessageKind;

constexpr transport::ClusterToken kToken{77, 1};
inline const std::string kModel = testing::GoldenDir();

// The reply the fake worker sends to one micro-batch.
using Behaviour = std::function<v1::TokensHeader(const v1::StepHeader&)>;

// Samples token (start_position + num_tokens) % 100 for every sequence that samples.
inline v1::TokensHeader CountingTail(const v1::StepHeader& h) {
  v1::TokensHeader reply;
  for (const v1::StepSequence& s : h.sequences()) {
    if (!s.sample()) continue;
    v1::SampledToken* t = reply.add_tokens();
    t->set_sequence_id(s.sequence_id());
    t->set_token_id(static_cast<int32_t>((s.start_position() + s.num_tokens()) % 100));
  }
  return reply;
}

// A worker that keeps per-sequence context like a real stage: a step at position 0 starts the
// sequence afresh, any other must continue exactly where the sequence stands, and the token it
// samples depends on every token fed so far. A replay that fed anything else would change the
// output. It refuses steps of another sequence epoch, as a real worker drops them.
class ContextWorker {
 public:
  v1::TokensHeader Step(const v1::StepHeader& h, const int32_t* tokens) {
    absl::MutexLock lock(&mu_);
    v1::TokensHeader reply;
    if (h.sequence_epoch() != epoch_) {
      reply.set_error(absl::StrCat("step of epoch ", h.sequence_epoch(), ", serving epoch ", epoch_));
      return reply;
    }
    for (const v1::StepSequence& s : h.sequences()) {
      std::vector<int32_t>& fed = fed_[s.sequence_id()];
      if (s.start_position() == 0) fed.clear();
      if (static_cast<int64_t>(fed.size()) != s.start_position()) {
        reply.set_error(absl::StrCat("sequence ", s.sequence_id(), " at ", s.start_position(), " but holds ", fed.size()));
        return reply;
      }
      fed.insert(fed.end(), tokens, tokens + s.num_tokens());
      tokens += s.num_tokens();
      if (!s.sample()) continue;
      int64_t hash = 0;
      for (int32_t t : fed) hash = (hash * 31 + t) % 1000003;
      v1::SampledToken* out = reply.add_tokens();
      out->set_sequence_id(s.sequence_id());
      out->set_token_id(static_cast<int32_t>(hash % 100));
    }
    return reply;
  }
  // A restarted worker: no sequence state, a new sequence epoch.
  void Restart(uint64_t sequence_epoch) {
    absl::MutexLock lock(&mu_);
    fed_.clear();
    epoch_ = sequence_epoch;
  }

 private:
  absl::Mutex mu_;
  std::map<uint64_t, std::vector<int32_t>> fed_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 0;
};

// What ContextWorker generates for `prompt`, undisturbed.
inline std::vector<int32_t> Undisturbed(std::vector<int32_t> context, int max_tokens) {
  std::vector<int32_t> out;
  for (int i = 0; i < max_tokens; ++i) {
    int64_t hash = 0;
    for (int32_t t : context) hash = (hash * 31 + t) % 1000003;
    out.push_back(static_cast<int32_t>(hash % 100));
    context.push_back(out.back());
  }
  return out;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = model::ModelConfig::FromFile(kModel);
    ASSERT_TRUE(config.ok()) << config.status();
    config_ = *config;
    fabric_ = std::make_shared<transport::InprocFabric>();
    coordinator_ = transport::InprocTransport::Create(fabric_, "coordinator", {0, kToken}).value();
    worker_ = transport::InprocTransport::Create(fabric_, "w", {1, kToken}).value();
    cluster_ = std::make_unique<Cluster>(plan::WholeModelShardConfig(kModel, "w", "cpu", config_), config_, "fp",
                                         coordinator_.get(), kToken);
    cluster_->set_log(NullLog());
  }
  void TearDown() override { StopWorker(); }

  // Stops the scheduler and the worker thread (idempotent). A worker thread serving with a test's
  // local ContextWorker must be stopped before that local is destroyed, which TearDown is too late
  // for: the scheduler keeps sending steps meanwhile, and a step served with a destroyed worker
  // corrupted the heap (1 run in 300 under load). Declare a StopWorkerAtExit after those locals.
  void StopWorker() {
    if (!release_reply_.HasBeenNotified()) release_reply_.Notify();  // a test that failed holding
    scheduler_.reset();
    worker_->Shutdown();
    if (worker_thread_.joinable()) worker_thread_.join();
  }
  struct StopWorkerAtExit {
    SchedulerTest* test;
    ~StopWorkerAtExit() { test->StopWorker(); }
  };

  // The worker registers, loads and applies the peer table: the cluster is ready.
  void JoinWorker() {
    v1::Register reg;
    reg.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    reg.set_name("w");
    reg.set_device("cpu");
    auto writer = [this](const v1::CoordinatorMessage& m) {
      if (m.has_peers()) {
        absl::MutexLock lock(&table_mu_);
        table_version_ = m.peers().version();
        sequence_epoch_ = m.peers().sequence_epoch();
      }
      return true;
    };
    ASSERT_THAT(cluster_->Register(reg, writer, &session_).status(), IsOk());
    v1::Ready ready;
    ready.set_checkpoint_fingerprint("fp");
    ready.set_data_address("w");
    ready.set_state_memory_bytes(int64_t{1} << 34);
    ASSERT_THAT(cluster_->OnReady(session_, ready), IsOk());
    ASSERT_THAT(worker_->Connect(0, "coordinator"), IsOk());
    cluster_->OnPeersApplied(session_, table_version());
    ASSERT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
  }

  // Serves every step message with `behaviour` (no reply when it returns an empty step id 0
  // header: the step goes unanswered), keeping each header it saw.
  void ServeSteps(Behaviour behaviour, bool reply = true) {
    worker_thread_ = std::thread([this, behaviour, reply] {
      transport::Message m;
      v1::StepHeader h;
      while (ReceiveStep(&m, &h)) {
        if (reply) Reply(h, behaviour(h));
      }
    });
  }

  // The worker's next step message, its header kept in seen_; false once its transport is shut
  // down (or a header does not parse, which fails the test).
  bool ReceiveStep(transport::Message* m, v1::StepHeader* h) {
    absl::StatusOr<transport::Message> got = worker_->ReceiveAny(InboxKey(MessageKind::kStep), absl::InfiniteDuration());
    if (!got.ok()) return false;
    *m = *std::move(got);
    const bool parsed = h->ParseFromString(m->header);
    EXPECT_TRUE(parsed) << "a step header that does not parse";
    absl::MutexLock lock(&mu_);
    seen_.push_back(*h);
    return parsed;
  }
  void Reply(const v1::StepHeader& h, v1::TokensHeader t) {
    t.set_step_id(h.step_id());
    t.set_micro_batch(h.micro_batch());
    (void)worker_->Send(0, InboxKey(MessageKind::kTokens),
                        t.SerializeAsString(), nullptr, 0);
  }

  void StartScheduler(SchedulerOptions options = {}) {
    scheduler_ = std::make_unique<Scheduler>(cluster_.get(), coordinator_.get(), std::move(options));
  }

  std::shared_ptr<Request> Submit(std::vector<int32_t> prompt, int max_tokens, std::vector<int64_t> stop_ids = {},
                                  std::string source = "") {
    Request::Params p;
    p.source = std::move(source);
    p.prompt = std::move(prompt);
    p.max_tokens = max_tokens;
    p.stop_ids = std::move(stop_ids);
    auto r = std::make_shared<Request>(next_id_++, p);
    EXPECT_THAT(scheduler_->Submit(r), IsOk());
    return r;
  }

  // Waits for the request to end (bounded: a hang fails here instead of timing out the run).
  static std::vector<int32_t> Finish(Request& r) {
    std::vector<int32_t> ids;
    std::vector<TokenEvent> events;
    const absl::Time give_up = absl::Now() + absl::Seconds(30);
    while (absl::Now() < give_up && r.Next(&events, give_up - absl::Now())) {
      for (const TokenEvent& e : events) ids.push_back(e.token_id);
    }
    EXPECT_TRUE(r.done()) << "request " << r.id() << " did not end within 30 s";
    return ids;
  }

  std::vector<v1::StepHeader> Seen() {
    absl::MutexLock lock(&mu_);
    return seen_;
  }
  // Waits until the worker has seen `n` step messages, or one that satisfies `pred`.
  void AwaitSeen(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return seen_.size() >= n; };
    mu_.Await(absl::Condition(&enough));
  }
  void AwaitFreed(uint64_t id) {
    absl::MutexLock lock(&mu_);
    auto freed = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      for (const v1::StepHeader& h : seen_) {
        for (uint64_t f : h.freed_sequences()) {
          if (f == id) return true;
        }
      }
      return false;
    };
    mu_.Await(absl::Condition(&freed));
  }

  // Set before ServeContext: the worker holds its reply to step `hold_reply_at_` (counting from
  // 1) until release_reply_ is notified, so that a test can act while that step is in flight.
  int hold_reply_at_ = -1;
  absl::Notification release_reply_;

  // Serves steps with `worker` until `drop_at` steps were seen: that step goes unanswered (the
  // worker died with it) and the thread ends. Step `unavailable_at` is answered with a
  // data-plane error instead (a peer of the worker unreachable), the worker staying up.
  void ServeContext(ContextWorker* worker, int drop_at, int unavailable_at = -1) {
    worker_thread_ = std::thread([this, worker, drop_at, unavailable_at] {
      transport::Message m;
      v1::StepHeader h;
      for (int n = 1; ReceiveStep(&m, &h); ++n) {
        if (n == drop_at) return;
        if (n == hold_reply_at_) release_reply_.WaitForNotification();
        v1::TokensHeader t = worker->Step(h, reinterpret_cast<const int32_t*>(m.payload.data()));
        if (n == unavailable_at) {
          t.Clear();
          t.set_error("worker w: ucp_am_send_nbx to peer 2: Endpoint timeout");
          t.set_error_code(static_cast<int>(absl::StatusCode::kUnavailable));
        }
        Reply(h, std::move(t));
      }
    });
  }

  model::ModelConfig config_;
  std::shared_ptr<transport::InprocFabric> fabric_;
  std::unique_ptr<transport::InprocTransport> coordinator_, worker_;
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Scheduler> scheduler_;
  std::thread worker_thread_;
  uint64_t session_ = 0, next_id_ = 1;
  // The newest peer table the worker was sent (the cluster's writer may run on any thread).
  absl::Mutex table_mu_;
  uint64_t table_version_ ABSL_GUARDED_BY(table_mu_) = 0;
  uint64_t sequence_epoch_ ABSL_GUARDED_BY(table_mu_) = 0;
  uint64_t AwaitTableAfter(uint64_t version) {
    absl::MutexLock lock(&table_mu_);
    auto newer = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(table_mu_) { return table_version_ > version; };
    table_mu_.Await(absl::Condition(&newer));
    return table_version_;
  }
  uint64_t sequence_epoch() {
    absl::MutexLock lock(&table_mu_);
    return sequence_epoch_;
  }
  uint64_t table_version() {
    absl::MutexLock lock(&table_mu_);
    return table_version_;
  }
  absl::Mutex mu_;
  std::vector<v1::StepHeader> seen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::coordinator::scheduler_testing
