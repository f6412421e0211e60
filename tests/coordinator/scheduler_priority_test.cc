// Interactive requests beside batch jobs: jobs hold at most their share of the running
// sequences, and an interactive request joins the step after the one in flight when it arrives,
// preempting a job request if it must; the preempted request is replayed and loses nothing.
#include <map>
#include <set>
#include <vector>

#include "coordinator/scheduler.h"
#include "tests/coordinator/scheduler_fixture.h"

namespace mmx::coordinator {
namespace {

using namespace scheduler_testing;  // NOLINT: the fixture and its helpers
using ::mmx::testing::IsOk;

class PriorityTest : public SchedulerTest {
 protected:
  void Start(int max_sequences, double max_job_share) {
    JoinWorker();
    worker_.Restart(sequence_epoch());
    ServeContext(&worker_, -1);
    SchedulerOptions options;
    options.max_sequences = max_sequences;
    options.max_job_share = max_job_share;
    options.prefill_chunk = 4;
    options.step_timeout = absl::Hours(1);
    StartScheduler(options);
  }
  std::vector<std::shared_ptr<Request>> SubmitJob(int n, int max_tokens) {
    std::vector<std::shared_ptr<Request>> job;
    for (int i = 0; i < n; ++i) job.push_back(Submit(JobPrompt(i), max_tokens, {}, "job-1"));
    return job;
  }
  static std::vector<int32_t> JobPrompt(int i) { return {i, i + 1, i + 2}; }
  // The index among the worker's step messages of the first that samples request `id`.
  int FirstSampleStep(uint64_t id) {
    const std::vector<v1::StepHeader> seen = Seen();
    for (size_t i = 0; i < seen.size(); ++i) {
      for (const v1::StepSequence& s : seen[i].sequences()) {
        if (s.sequence_id() == id && s.sample()) return static_cast<int>(i);
      }
    }
    return -1;
  }
  // Submits an interactive request and returns it with the number of step messages the worker
  // had seen by then. At most one step can be in flight unseen (the scheduler waits for each
  // step's tokens), so the request must be sampled in step `seen` or `seen + 1`.
  std::pair<std::shared_ptr<Request>, int> SubmitInteractive(std::vector<int32_t> prompt, int max_tokens) {
    auto r = Submit(std::move(prompt), max_tokens);
    return {r, static_cast<int>(Seen().size())};
  }
  void ExpectUndisturbed(const std::vector<std::shared_ptr<Request>>& job, int max_tokens) {
    for (size_t i = 0; i < job.size(); ++i) {
      EXPECT_EQ(Finish(*job[i]), Undisturbed(JobPrompt(static_cast<int>(i)), max_tokens)) << "job request " << i;
      EXPECT_THAT(job[i]->final_status(), IsOk());
    }
  }
  ContextWorker worker_;
};

TEST_F(PriorityTest, JobRequestsHoldAtMostTheirShareAndAnInteractiveRequestJoinsTheNextStep) {
  Start(/*max_sequences=*/4, /*max_job_share=*/0.5);
  const auto job = SubmitJob(6, 30);
  AwaitSeen(4);
  auto [interactive, seen] = SubmitInteractive({9, 9, 9}, 5);
  EXPECT_EQ(Finish(*interactive), Undisturbed({9, 9, 9}, 5));
  ExpectUndisturbed(job, 30);
  const int first = FirstSampleStep(interactive->id());
  EXPECT_GE(first, 0);
  EXPECT_LE(first, seen + 1);
  std::set<uint64_t> job_ids;
  for (const auto& r : job) job_ids.insert(r->id());
  size_t most = 0;
  for (const v1::StepHeader& h : Seen()) {
    size_t jobs = 0;
    for (const v1::StepSequence& s : h.sequences()) jobs += job_ids.count(s.sequence_id());
    most = std::max(most, jobs);
  }
  EXPECT_EQ(most, 2u);  // floor(0.5 * 4): the share, used
}

TEST_F(PriorityTest, AnInteractiveRequestPreemptsAJobHoldingEverySlotAndTheJobLosesNothing) {
  // The worker holds step 6: the job's first two requests, decoding, hold both slots when the
  // interactive request arrives (without the hold, a test thread descheduled long enough saw
  // them finish and the interactive one take a free slot).
  hold_reply_at_ = 6;
  Start(/*max_sequences=*/2, /*max_job_share=*/1.0);
  const auto job = SubmitJob(3, 24);
  AwaitSeen(6);
  auto [interactive, seen] = SubmitInteractive({4, 4}, 6);
  release_reply_.Notify();
  EXPECT_EQ(Finish(*interactive), Undisturbed({4, 4}, 6));
  ExpectUndisturbed(job, 24);  // the preempted one replayed its prompt and tokens exactly
  const int first = FirstSampleStep(interactive->id());
  EXPECT_GE(first, 0);
  EXPECT_LE(first, seen + 1);
  // A job request gave up its slot after it had generated: it started over at position 0 (its
  // replay) after steps that had sampled it.
  std::map<uint64_t, int> starts;
  for (const v1::StepHeader& h : Seen()) {
    for (const v1::StepSequence& s : h.sequences()) starts[s.sequence_id()] += s.start_position() == 0;
  }
  int preempted = 0;
  for (const auto& r : job) preempted += starts[r->id()] > 1;
  EXPECT_EQ(preempted, 1);
}

}  // namespace
}  // namespace mmx::coordinator
