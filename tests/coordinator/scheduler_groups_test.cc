// Attention groups: the scheduler sends each sequence's steps to the head of the group holding its
// state, keeps each group's waves apart, and frees a sequence only in its group. Two heads the test
// plays over InprocTransport (group a: two stages, the test answering for both at its head;
// group b: one stage), a real Cluster, no processes.
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "coordinator/scheduler.h"
#include "tests/coordinator/scheduler_fixture.h"

namespace mmx::coordinator {
namespace {

using namespace scheduler_testing;  // NOLINT: ContextWorker, Undisturbed and the shared names

const std::vector<std::vector<int32_t>> kPrompts = {{3, 1, 4, 1, 5, 9, 2}, {2, 7}, {1, 8, 2, 8, 1}, {6},
                                                    {5, 5, 5}, {9, 8, 7, 6, 5, 4, 3, 2, 1}};
constexpr int kMaxTokens = 7;

std::string TwoGroups() {
  return absl::StrCat("model: ", kModel, R"(
workers:
  - {name: a0, group: a, embedding: true, attention: [0, 4], experts: [{layers: [0, 8], ids: all}]}
  - {name: a1, group: a, attention: [4, 8], lm_head: true}
  - {name: b, group: b, embedding: true, attention: [0, 8], lm_head: true}
)");
}

class SchedulerGroupsTest : public ::testing::Test {
 protected:
  struct Head {
    std::unique_ptr<transport::InprocTransport> transport;
    ContextWorker context;
    std::thread thread;
    absl::Mutex mu;
    std::set<uint64_t> served ABSL_GUARDED_BY(mu);  // sequences it ran
    std::vector<uint64_t> freed ABSL_GUARDED_BY(mu);  // sequences it was told to free
  };

  void SetUp() override {
    auto config = model::ModelConfig::FromFile(kModel);
    ASSERT_TRUE(config.ok()) << config.status();
    auto shard = plan::ParseShardConfig(TwoGroups());
    ASSERT_TRUE(shard.ok()) << shard.status();
    ASSERT_THAT(plan::ValidateShardConfig(*shard, *config), IsOk());
    fabric_ = std::make_shared<transport::InprocFabric>();
    coordinator_ = transport::InprocTransport::Create(fabric_, "coordinator", {0, kToken}).value();
    for (int i = 0; i < 3; ++i) {
      transports_[i] = transport::InprocTransport::Create(fabric_, kNames[i], {static_cast<transport::PeerId>(i + 1), kToken}).value();
    }
    cluster_ = std::make_unique<Cluster>(*shard, *config, "fp", coordinator_.get(), kToken);
    cluster_->set_log(NullLog());
  }
  void TearDown() override {
    scheduler_.reset();
    for (auto& t : transports_) t->Shutdown();
    for (Head* h : {&a_, &b_}) {
      if (h->thread.joinable()) h->thread.join();
    }
  }

  // Worker i registers and loads (its peer table applied by ApplyTables).
  void Register(int i) {
    v1::Register reg;
    reg.set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
    reg.set_name(kNames[i]);
    reg.set_device("cpu");
    auto writer = [this](const v1::CoordinatorMessage& m) {
      if (m.has_peers()) {
        absl::MutexLock lock(&table_mu_);
        table_version_ = m.peers().version();
        sequence_epoch_ = m.peers().sequence_epoch();
      }
      return true;
    };
    ASSERT_THAT(cluster_->Register(reg, writer, &sessions_[i]).status(), IsOk());
    v1::Ready ready;
    ready.set_checkpoint_fingerprint("fp");
    ready.set_data_address(kNames[i]);
    ready.set_state_memory_bytes(int64_t{1} << 34);
    ASSERT_THAT(cluster_->OnReady(sessions_[i], ready), IsOk());
  }
  // Every worker applies the newest peer table: the cluster is ready; the heads serve its epoch
  // with no sequence state.
  void ApplyTables() {
    uint64_t version, epoch;
    {
      absl::MutexLock lock(&table_mu_);
      version = table_version_;
      epoch = sequence_epoch_;
    }
    for (uint64_t s : sessions_) cluster_->OnPeersApplied(s, version);  // the cluster writes under its own lock
    ASSERT_TRUE(cluster_->ready()) << cluster_->NotReadyReason();
    a_.context.Restart(epoch);
    b_.context.Restart(epoch);
  }
  void JoinWorkers() {
    for (int i = 0; i < 3; ++i) {
      Register(i);
      ASSERT_THAT(transports_[i]->Connect(0, "coordinator"), IsOk());
    }
    ApplyTables();
  }

  // `head` answers every step that reaches its transport as a whole group would, until the
  // `drop_at`-th, which it keeps unanswered as it stops (its group lost with it; -1: never).
  void Serve(Head* head, transport::InprocTransport* transport, int drop_at = -1) {
    head->thread = std::thread([head, transport, drop_at] {
      for (int n = 1;; ++n) {
        absl::StatusOr<transport::Message> m = transport->ReceiveAny(InboxKey(MessageKind::kStep), absl::InfiniteDuration());
        if (!m.ok() || n == drop_at) return;
        v1::StepHeader h;
        ASSERT_TRUE(h.ParseFromString(m->header));
        {
          absl::MutexLock lock(&head->mu);
          for (const v1::StepSequence& s : h.sequences()) head->served.insert(s.sequence_id());
          head->freed.insert(head->freed.end(), h.freed_sequences().begin(), h.freed_sequences().end());
        }
        v1::TokensHeader t = head->context.Step(h, reinterpret_cast<const int32_t*>(m->payload.data()));
        t.set_step_id(h.step_id());
        t.set_micro_batch(h.micro_batch());
        (void)transport->Send(0, InboxKey(MessageKind::kTokens), t.SerializeAsString(), nullptr, 0);
      }
    });
  }

  std::vector<std::shared_ptr<Request>> SubmitAll(int steps_in_flight) {
    SchedulerOptions options;
    options.prefill_chunk = 3;
    options.steps_in_flight = steps_in_flight;
    options.queue_timeout = absl::Hours(1);
    options.step_timeout = absl::Hours(1);
    scheduler_ = std::make_unique<Scheduler>(cluster_.get(), coordinator_.get(), options);
    std::vector<std::shared_ptr<Request>> requests;
    for (const auto& prompt : kPrompts) {
      Request::Params p;
      p.prompt = prompt;
      p.max_tokens = kMaxTokens;
      requests.push_back(std::make_shared<Request>(next_id_++, p));
      EXPECT_THAT(scheduler_->Submit(requests.back()), IsOk());
    }
    return requests;
  }

  // Runs kPrompts over both groups: each gets the tokens it would get alone.
  void RunAndExpectUndisturbed(int steps_in_flight, int expected_limit) {
    auto requests = SubmitAll(steps_in_flight);
    JoinWorkers();
    Serve(&a_, transports_[0].get());
    Serve(&b_, transports_[2].get());
    ExpectUndisturbed(requests);
    EXPECT_EQ(scheduler_->steps_in_flight_limit(), expected_limit);
    scheduler_.reset();
  }

  static void ExpectUndisturbed(const std::vector<std::shared_ptr<Request>>& requests) {
    for (size_t i = 0; i < requests.size(); ++i) {
      std::vector<int32_t> ids;
      std::vector<TokenEvent> events;
      const absl::Time give_up = absl::Now() + absl::Seconds(30);
      while (absl::Now() < give_up && requests[i]->Next(&events, give_up - absl::Now())) {
        for (const TokenEvent& e : events) ids.push_back(e.token_id);
      }
      EXPECT_EQ(ids, Undisturbed(kPrompts[i], kMaxTokens)) << "request " << i;
      EXPECT_THAT(requests[i]->final_status(), IsOk()) << "request " << i;
    }
  }

  static constexpr const char* kNames[3] = {"a0", "a1", "b"};
  std::shared_ptr<transport::InprocFabric> fabric_;
  std::unique_ptr<transport::InprocTransport> coordinator_;
  std::unique_ptr<transport::InprocTransport> transports_[3];
  std::unique_ptr<Cluster> cluster_;
  std::unique_ptr<Scheduler> scheduler_;
  uint64_t sessions_[3] = {};
  Head a_, b_;
  uint64_t next_id_ = 1;
  absl::Mutex table_mu_;
  uint64_t table_version_ ABSL_GUARDED_BY(table_mu_) = 0;
  uint64_t sequence_epoch_ ABSL_GUARDED_BY(table_mu_) = 0;
};

// A ContextWorker refuses a sequence that continues where it does not hold it: every sequence's
// steps went to one group's head from its first to its last.
TEST_F(SchedulerGroupsTest, SequencesSplitBetweenTheGroupsAndEachStaysInItsGroup) {
  RunAndExpectUndisturbed(/*steps_in_flight=*/1, /*expected_limit=*/2);
  absl::MutexLock la(&a_.mu);
  absl::MutexLock lb(&b_.mu);
  EXPECT_FALSE(a_.served.empty()) << "group a ran no sequence";
  EXPECT_FALSE(b_.served.empty()) << "group b ran no sequence";
  for (uint64_t id : a_.served) EXPECT_EQ(b_.served.count(id), 0u) << "sequence " << id << " ran in both groups";
  EXPECT_EQ(a_.served.size() + b_.served.size(), kPrompts.size());
  // A sequence's state is freed in its own group only.
  for (uint64_t id : a_.freed) EXPECT_EQ(a_.served.count(id), 1u) << "group a told to free " << id;
  for (uint64_t id : b_.freed) EXPECT_EQ(b_.served.count(id), 1u) << "group b told to free " << id;
}

// Automatic: one step in flight per stage of the longest group (two, in group a), for each group.
TEST_F(SchedulerGroupsTest, AutomaticStepsInFlightAreCountedPerGroup) {
  RunAndExpectUndisturbed(/*steps_in_flight=*/0, /*expected_limit=*/4);
  EXPECT_EQ(cluster_->head("a"), 1u);
  EXPECT_EQ(cluster_->head("b"), 3u);
  EXPECT_EQ(cluster_->Groups(), (std::vector<std::string>{"a", "b"}));
}

// Group b's head is lost with a step out: every wave of both groups pauses (a new epoch voids all
// state), and once it is back each sequence is replayed in the group that held it, from position
// 0, to the tokens it would have had.
TEST_F(SchedulerGroupsTest, ALostWorkerPausesBothGroupsAndEachReplaysInItsOwn) {
  auto requests = SubmitAll(/*steps_in_flight=*/1);
  JoinWorkers();
  Serve(&a_, transports_[0].get(), /*drop_at=*/3);
  Serve(&b_, transports_[2].get(), /*drop_at=*/3);
  a_.thread.join();
  b_.thread.join();
  std::set<uint64_t> in_a, in_b;
  {
    absl::MutexLock la(&a_.mu);
    absl::MutexLock lb(&b_.mu);
    in_a = a_.served;
    in_b = b_.served;
  }
  ASSERT_FALSE(in_a.empty());
  ASSERT_FALSE(in_b.empty());
  cluster_->OnSessionEnded(sessions_[2]);
  for (const auto& r : requests) EXPECT_FALSE(r->done());
  Register(2);
  ApplyTables();  // both heads restarted empty: every sequence must be rebuilt where it lives
  Serve(&a_, transports_[0].get());
  Serve(&b_, transports_[2].get());
  ExpectUndisturbed(requests);  // a ContextWorker refuses a sequence it does not hold
  absl::MutexLock la(&a_.mu);
  absl::MutexLock lb(&b_.mu);
  for (uint64_t id : in_a) EXPECT_EQ(b_.served.count(id), 0u) << "sequence " << id << " moved to group b";
  for (uint64_t id : in_b) EXPECT_EQ(a_.served.count(id), 0u) << "sequence " << id << " moved to group a";
}

}  // namespace
}  // namespace mmx::coordinator
