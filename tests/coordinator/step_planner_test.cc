#include "coordinator/step_planner.h"

#include <vector>

#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

SequenceProgress Prefilling(int64_t prompt, int64_t done = 0) { return {prompt, 0, done}; }
SequenceProgress Decoding(int64_t prompt, int64_t generated) { return {prompt, generated, prompt + generated - 1}; }
// A sequence whose state was lost after `generated` tokens, `done` positions replayed since.
SequenceProgress Replaying(int64_t prompt, int64_t generated, int64_t done = 0) { return {prompt, generated, done}; }

std::vector<PlannedSequence> Flat(const StepPlan& plan) {
  std::vector<PlannedSequence> all;
  for (const auto& mb : plan.micro_batches) all.insert(all.end(), mb.begin(), mb.end());
  return all;
}

// A job's prompt ahead of an interactive one in running order, and a job decoding: while the
// interactive prompt has a chunk to go, the step is its own (and other interactive sequences'),
// so a person's first token never waits on a batch job's step; once it decodes, jobs come back,
// the interactive work still first.
TEST(StepPlannerTest, WhileAnInteractivePromptPrefillsJobsSitOut) {
  SequenceProgress job = Prefilling(300), job_decoding = Decoding(5, 3), person = Prefilling(20),
                   other_person = Decoding(4, 2);
  job.interactive = false;
  job_decoding.interactive = false;
  StepLimits limits;
  limits.prefill_chunk = 256;
  limits.max_step_tokens = 100;
  std::vector<PlannedSequence> all = Flat(PlanStep({job, job_decoding, person, other_person}, limits));
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].index, 3u);  // the other person's decode token
  EXPECT_EQ(all[1].index, 2u);  // the person's whole prompt
  EXPECT_EQ(all[1].num_tokens, 20);
  EXPECT_TRUE(all[1].sample);

  person = Decoding(20, 1);  // its first token is out
  all = Flat(PlanStep({job, job_decoding, person, other_person}, limits));
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[0].index, 1u);  // decode tokens first, in running order
  EXPECT_EQ(all[1].index, 2u);
  EXPECT_EQ(all[2].index, 3u);
  EXPECT_EQ(all[3].index, 0u);  // then the job's chunk, within the budget
  EXPECT_EQ(all[3].num_tokens, 97);
}

// An interactive sequence rebuilt after a failover is prefilled like a prompt: jobs sit out too.
TEST(StepPlannerTest, InteractiveReplaysAlsoKeepJobsOut) {
  SequenceProgress job = Decoding(5, 3), person = Replaying(10, 4, 6);
  job.interactive = false;
  const std::vector<PlannedSequence> all = Flat(PlanStep({job, person}, StepLimits{}));
  ASSERT_EQ(all.size(), 1u);
  EXPECT_EQ(all[0].index, 1u);
  EXPECT_EQ(all[0].num_tokens, 8);  // the rest of its prompt and tokens, sampling the next
}

TEST(StepPlannerTest, NothingRunningPlansNothing) {
  EXPECT_TRUE(PlanStep({}, StepLimits{}).empty());
}

TEST(StepPlannerTest, DecodeTokensComeFirstAtThePositionAfterTheLastToken) {
  // Running order: a prompt, then two decoding sequences.
  const StepPlan plan = PlanStep({Prefilling(10), Decoding(5, 3), Decoding(7, 1)}, StepLimits{});
  const std::vector<PlannedSequence> all = Flat(plan);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].index, 1u);
  EXPECT_EQ(all[0].start_position, 5 + 3 - 1);  // feeds generated token 3 at position 7
  EXPECT_EQ(all[0].num_tokens, 1);
  EXPECT_FALSE(all[0].prefill);
  EXPECT_TRUE(all[0].sample);
  EXPECT_EQ(all[1].index, 2u);
  EXPECT_EQ(all[1].start_position, 7);
  EXPECT_EQ(all[2].index, 0u);
  EXPECT_TRUE(all[2].prefill);
  EXPECT_EQ(all[2].num_tokens, 10);
  EXPECT_TRUE(all[2].sample);  // the chunk ends the prompt
  EXPECT_EQ(plan.num_tokens, 12);
  EXPECT_EQ(plan.num_prompt_tokens, 10);
}

TEST(StepPlannerTest, ChunkedPrefillResumesWhereThePromptStoodAndSamplesOnlyAtItsEnd) {
  StepLimits limits;
  limits.prefill_chunk = 4;
  StepPlan plan = PlanStep({Prefilling(10, 0)}, limits);
  ASSERT_EQ(Flat(plan).size(), 1u);
  EXPECT_EQ(Flat(plan)[0].start_position, 0);
  EXPECT_EQ(Flat(plan)[0].num_tokens, 4);
  EXPECT_FALSE(Flat(plan)[0].sample);
  plan = PlanStep({Prefilling(10, 8)}, limits);
  EXPECT_EQ(Flat(plan)[0].start_position, 8);
  EXPECT_EQ(Flat(plan)[0].num_tokens, 2);
  EXPECT_TRUE(Flat(plan)[0].sample);
}

TEST(StepPlannerTest, TheStepBudgetLimitsPromptChunksInRunningOrder) {
  StepLimits limits;
  limits.prefill_chunk = 8;
  limits.max_step_tokens = 12;
  // Two decode tokens take 2 of 12; the first prompt gets 8, the second the 2 left, the third none.
  const std::vector<PlannedSequence> all =
      Flat(PlanStep({Prefilling(20), Decoding(3, 1), Prefilling(20), Decoding(3, 2), Prefilling(20)}, limits));
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[2].index, 0u);
  EXPECT_EQ(all[2].num_tokens, 8);
  EXPECT_EQ(all[3].index, 2u);
  EXPECT_EQ(all[3].num_tokens, 2);
  int64_t total = 0;
  for (const auto& p : all) total += p.num_tokens;
  EXPECT_EQ(total, 12);  // exactly the budget
}

TEST(StepPlannerTest, TheFirstPromptAlwaysGetsAChunkEvenWhenDecodeFillsTheBudget) {
  StepLimits limits;
  limits.prefill_chunk = 5;
  limits.max_step_tokens = 2;
  const std::vector<PlannedSequence> all =
      Flat(PlanStep({Decoding(3, 1), Decoding(3, 1), Decoding(3, 1), Prefilling(9), Prefilling(9)}, limits));
  ASSERT_EQ(all.size(), 4u);  // three decodes over budget, then one chunk, the second prompt waits
  EXPECT_EQ(all[3].index, 3u);
  EXPECT_EQ(all[3].num_tokens, 5);
}

TEST(StepPlannerTest, MicroBatchesSplitContiguouslyWithEnoughSequencesEach) {
  StepLimits limits;
  limits.micro_batches = 2;
  limits.min_sequences_per_micro_batch = 4;
  std::vector<SequenceProgress> seven(7, Decoding(2, 1));
  EXPECT_EQ(PlanStep(seven, limits).micro_batches.size(), 1u);  // 7 / 4 = 1
  std::vector<SequenceProgress> nine(9, Decoding(2, 1));
  const StepPlan plan = PlanStep(nine, limits);
  ASSERT_EQ(plan.micro_batches.size(), 2u);
  EXPECT_EQ(plan.micro_batches[0].size(), 5u);
  EXPECT_EQ(plan.micro_batches[1].size(), 4u);
  EXPECT_EQ(plan.micro_batches[0].front().index, 0u);
  EXPECT_EQ(plan.micro_batches[1].front().index, 5u);
}

TEST(StepPlannerTest, AReplayPrefillsThePromptAndTheGeneratedTokensAndSamplesOnlyAtTheEnd) {
  StepLimits limits;
  limits.prefill_chunk = 4;
  // Prompt 6, 3 tokens generated before the loss: context 9, all to feed again.
  StepPlan plan = PlanStep({Replaying(6, 3)}, limits);
  std::vector<PlannedSequence> all = Flat(plan);
  ASSERT_EQ(all.size(), 1u);
  EXPECT_TRUE(all[0].prefill);
  EXPECT_EQ(all[0].start_position, 0);
  EXPECT_EQ(all[0].num_tokens, 4);
  EXPECT_FALSE(all[0].sample);
  // Past the prompt, into the generated tokens: still no sample until the context's end.
  all = Flat(PlanStep({Replaying(6, 3, 4)}, limits));
  EXPECT_EQ(all[0].start_position, 4);
  EXPECT_EQ(all[0].num_tokens, 4);
  EXPECT_FALSE(all[0].sample);
  // Up to the last generated token: the rest is the ordinary decode step that feeds it.
  all = Flat(PlanStep({Replaying(6, 3, 8)}, limits));
  EXPECT_EQ(all[0].start_position, 8);
  EXPECT_EQ(all[0].num_tokens, 1);
  EXPECT_FALSE(all[0].prefill);
  EXPECT_TRUE(all[0].sample);
  // A chunk that reaches the context's end feeds the last generated token too, and samples.
  limits.prefill_chunk = 16;
  all = Flat(PlanStep({Replaying(6, 3)}, limits));
  EXPECT_EQ(all[0].num_tokens, 9);
  EXPECT_TRUE(all[0].prefill);
  EXPECT_TRUE(all[0].sample);
}

TEST(StepPlannerTest, ReplaysShareTheStepBudgetWithDecodeFirst) {
  StepLimits limits;
  limits.prefill_chunk = 8;
  limits.max_step_tokens = 10;
  const StepPlan plan = PlanStep({Replaying(20, 5), Decoding(4, 2), Replaying(3, 1)}, limits);
  const std::vector<PlannedSequence> all = Flat(plan);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].index, 1u);  // the decoding sequence first
  EXPECT_FALSE(all[0].prefill);
  EXPECT_EQ(all[1].index, 0u);
  EXPECT_EQ(all[1].num_tokens, 8);
  EXPECT_EQ(all[2].index, 2u);
  EXPECT_EQ(all[2].num_tokens, 1);  // what is left of the budget
  EXPECT_EQ(plan.num_tokens, 10);
}

}  // namespace
}  // namespace mmx::coordinator
