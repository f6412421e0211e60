// Several steps in flight: the scheduler's waves against a worker the test plays over
// InprocTransport (tests/coordinator/scheduler_fixture.h).
#include <algorithm>
#include <map>
#include <set>
#include <utility>
#include <vector>

#include "coordinator/scheduler.h"
#include "tests/coordinator/scheduler_fixture.h"

namespace mmx::coordinator {
namespace {

using namespace scheduler_testing;  // NOLINT: the fixture and its helpers
using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

const std::vector<std::vector<int32_t>> kPrompts = {{3, 1, 4, 1, 5, 9, 2}, {2, 7}, {1, 8, 2, 8, 1}, {6}};
constexpr int kMaxTokens = 9;

class SchedulerWavesTest : public SchedulerTest {
 protected:
  // Serves steps with `worker`, answering only once no other step arrived for a while, so that
  // steps sent back to back are out together. Counts the most steps out at once, and fails the
  // test if a sequence is in two steps out at once. Returns after `drop_at` gatherings without
  // answering the last (the worker died with them); -1: never.
  void ServeGathered(ContextWorker* worker, int drop_at = -1) {
    worker_thread_ = std::thread([this, worker, drop_at] {
      std::vector<std::pair<transport::Message, v1::StepHeader>> out;
      for (int gathered = 0;;) {
        absl::StatusOr<transport::Message> m = worker_->ReceiveAny(
            InboxKey(MessageKind::kStep), out.empty() ? absl::InfiniteDuration() : absl::Milliseconds(100));
        if (m.ok()) {
          v1::StepHeader h;
          ASSERT_TRUE(h.ParseFromString(m->header));
          for (const auto& [other_m, other] : out) {
            for (const v1::StepSequence& a : h.sequences()) {
              for (const v1::StepSequence& b : other.sequences()) {
                EXPECT_NE(a.sequence_id(), b.sequence_id()) << "a sequence in two steps out at once";
              }
            }
          }
          {
            absl::MutexLock lock(&mu_);
            seen_.push_back(h);
          }
          out.emplace_back(*std::move(m), h);
          std::set<uint64_t> steps;
          for (const auto& [unused, header] : out) steps.insert(header.step_id());
          max_out_ = std::max(max_out_, static_cast<int>(steps.size()));
          continue;
        }
        if (!absl::IsDeadlineExceeded(m.status())) return;  // shut down
        if (++gathered == drop_at) return;
        for (auto& [msg, h] : out) Reply(h, worker->Step(h, reinterpret_cast<const int32_t*>(msg.payload.data())));
        out.clear();
      }
    });
  }

  // Submits kPrompts before the worker is there, so that they are admitted together.
  std::vector<std::shared_ptr<Request>> SubmitAll(int steps_in_flight) {
    SchedulerOptions options;
    options.prefill_chunk = 3;
    options.steps_in_flight = steps_in_flight;
    options.queue_timeout = absl::Hours(1);
    options.step_timeout = absl::Hours(1);
    StartScheduler(options);
    std::vector<std::shared_ptr<Request>> requests;
    for (const auto& p : kPrompts) requests.push_back(Submit(p, kMaxTokens));
    return requests;
  }
  static void ExpectUndisturbed(const std::vector<std::shared_ptr<Request>>& requests) {
    for (size_t i = 0; i < requests.size(); ++i) {
      EXPECT_EQ(Finish(*requests[i]), Undisturbed(kPrompts[i], kMaxTokens)) << "request " << i;
      EXPECT_THAT(requests[i]->final_status(), IsOk());
    }
  }

  int max_out_ = 0;  // worker thread; read after it is joined
};

TEST_F(SchedulerWavesTest, TwoWavesHaveTheirStepsOutAtOnceAndLoseNoToken) {
  auto requests = SubmitAll(2);
  ContextWorker worker;
  StopWorkerAtExit stop{this};
  JoinWorker();
  worker.Restart(sequence_epoch());
  ServeGathered(&worker);
  ExpectUndisturbed(requests);
  EXPECT_EQ(scheduler_->steps_in_flight_limit(), 2);
  scheduler_.reset();
  worker_->Shutdown();
  worker_thread_.join();
  EXPECT_EQ(max_out_, 2);
  // Two waves of two sequences (a new sequence joins the wave with the fewest tokens): sequences
  // that share a step are of one wave, and there are two such groups of two.
  std::map<uint64_t, uint64_t> wave_of;  // sequence -> the smallest id it shared a step with
  for (int pass = 0; pass < 2; ++pass) {
    for (const v1::StepHeader& h : Seen()) {
      uint64_t least = UINT64_MAX;
      for (const v1::StepSequence& s : h.sequences()) {
        least = std::min({least, s.sequence_id(), wave_of.count(s.sequence_id()) ? wave_of[s.sequence_id()] : UINT64_MAX});
      }
      for (const v1::StepSequence& s : h.sequences()) wave_of[s.sequence_id()] = least;
    }
  }
  std::map<uint64_t, int> sizes;
  for (const auto& [sequence, wave] : wave_of) ++sizes[wave];
  EXPECT_EQ(sizes.size(), 2u);
  for (const auto& [wave, size] : sizes) EXPECT_EQ(size, 2) << "wave of sequence " << wave;
}

TEST_F(SchedulerWavesTest, WithOneStepInFlightStepsGoOneAtATime) {
  auto requests = SubmitAll(1);
  ContextWorker worker;
  StopWorkerAtExit stop{this};
  JoinWorker();
  worker.Restart(sequence_epoch());
  ServeGathered(&worker);
  ExpectUndisturbed(requests);
  scheduler_.reset();
  worker_->Shutdown();
  worker_thread_.join();
  EXPECT_EQ(max_out_, 1);
}

// Lost with both waves' steps out (the third gathering, mid-prefill for the long prompt): every
// wave pauses, and the replay rebuilds each from position 0.
TEST_F(SchedulerWavesTest, ALostWorkerVoidsEveryWaveAndTheReplayRebuildsEach) {
  auto requests = SubmitAll(2);
  ContextWorker worker;
  StopWorkerAtExit stop{this};
  JoinWorker();
  worker.Restart(sequence_epoch());
  ServeGathered(&worker, /*drop_at=*/3);
  worker_thread_.join();
  const size_t before = Seen().size();
  cluster_->OnSessionEnded(session_);
  for (const auto& r : requests) EXPECT_FALSE(r->done());
  JoinWorker();
  worker.Restart(sequence_epoch());
  ServeGathered(&worker);
  ExpectUndisturbed(requests);
  const std::vector<v1::StepHeader> seen = Seen();
  ASSERT_GE(seen.size(), before + 2);
  for (size_t i = before; i < before + 2; ++i) {
    EXPECT_GT(seen[i].sequence_epoch(), seen[0].sequence_epoch());
    for (const v1::StepSequence& s : seen[i].sequences()) EXPECT_EQ(s.start_position(), 0);
  }
}

// One wave's step held at the worker: the other wave goes on; a request of the held wave that is
// cancelled ends at once, and its state is freed only once its step is back.
TEST_F(SchedulerWavesTest, AWaveGoesOnWhileAnotherIsOutAndACancelledSequenceIsFreedAfterItsStep) {
  SchedulerOptions options;
  options.steps_in_flight = 2;
  options.queue_timeout = absl::Hours(1);
  options.step_timeout = absl::Hours(1);
  StartScheduler(options);
  auto held = Submit({1, 2}, 50);   // wave 0
  auto going = Submit({3, 4}, 1000);  // wave 1: still going when the held step is answered
  ContextWorker worker;
  JoinWorker();
  worker.Restart(sequence_epoch());
  absl::Mutex held_mu;
  std::optional<std::pair<transport::Message, v1::StepHeader>> held_step;
  StopWorkerAtExit stop{this};  // the thread uses the locals above
  worker_thread_ = std::thread([&] {
    transport::Message m;
    v1::StepHeader h;
    while (ReceiveStep(&m, &h)) {
      if (h.sequences_size() == 1 && h.sequences(0).sequence_id() == held->id() && h.sequences(0).start_position() > 0) {
        absl::MutexLock lock(&held_mu);
        held_step.emplace(m, h);  // its first decode step: kept, not answered
        continue;
      }
      Reply(h, worker.Step(h, reinterpret_cast<const int32_t*>(m.payload.data())));
    }
  });
  {
    absl::MutexLock lock(&held_mu);
    held_mu.Await(absl::Condition(+[](std::optional<std::pair<transport::Message, v1::StepHeader>>* s) {
      return s->has_value();
    }, &held_step));
  }
  held->Cancel();
  Finish(*held);  // at once: its step is still out
  EXPECT_THAT(held->final_status(), StatusIs(absl::StatusCode::kCancelled));
  // The other wave goes on meanwhile: five more tokens.
  std::vector<int32_t> tokens;
  std::vector<TokenEvent> events;
  while (tokens.size() < 5 && going->Next(&events, absl::Seconds(30))) {
    for (const TokenEvent& e : events) tokens.push_back(e.token_id);
  }
  ASSERT_GE(tokens.size(), 5u);
  for (const v1::StepHeader& h : Seen()) {
    for (uint64_t f : h.freed_sequences()) EXPECT_NE(f, held->id()) << "freed while its step was out";
  }
  {
    absl::MutexLock lock(&held_mu);
    Reply(held_step->second, worker.Step(held_step->second, reinterpret_cast<const int32_t*>(held_step->first.payload.data())));
  }
  AwaitFreed(held->id());
  going->Cancel();
  const std::vector<int32_t> rest = Finish(*going);
  tokens.insert(tokens.end(), rest.begin(), rest.end());
  const std::vector<int32_t> undisturbed = Undisturbed({3, 4}, 1000);
  ASSERT_LE(tokens.size(), undisturbed.size());
  EXPECT_EQ(tokens, std::vector<int32_t>(undisturbed.begin(), undisturbed.begin() + tokens.size()));
}

}  // namespace
}  // namespace mmx::coordinator
