#include "coordinator/core_sharing.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

v1::Register Worker(const std::string& host, int threads, int cores) {
  v1::Register r;
  r.set_host(host);
  r.set_threads(threads);
  r.set_host_cores(cores);
  return r;
}

TEST(CoreSharingTest, WorkersOnTheirOwnHostsDoNotShare) {
  EXPECT_EQ(DescribeCoreSharing({Worker("a", 16, 16), Worker("b", 16, 16), Worker("c", 64, 64)}), "");
}

TEST(CoreSharingTest, WorkersThatFitTheirHostsCoresDoNotShare) {
  // Eight single-GPU workers on one 64-core box, 8 threads each: every thread has a core.
  std::vector<v1::Register> box(8, Worker("box", 8, 64));
  EXPECT_EQ(DescribeCoreSharing(box), "");
}

TEST(CoreSharingTest, OversubscribedHostIsNamed) {
  // The loopback benchmark: four workers with two threads each on a 2-core VM.
  std::vector<v1::Register> vm(4, Worker("vm", 2, 2));
  vm.push_back(Worker("other", 4, 4));
  EXPECT_EQ(DescribeCoreSharing(vm), "host 'vm' runs 4 workers with 8 threads on 2 cores");
}

TEST(CoreSharingTest, WorkersPinnedToTheirOwnCoresDoNotShare) {
  // taskset -c 0 and -c 1 on a 2-core VM: each reports one core, its own.
  v1::Register a = Worker("vm", 1, 1), b = Worker("vm", 1, 1);
  a.add_host_cpus(0);
  b.add_host_cpus(1);
  EXPECT_EQ(DescribeCoreSharing({a, b}), "");
  b.set_host_cpus(0, 0);  // both on core 0
  EXPECT_EQ(DescribeCoreSharing({a, b}), "host 'vm' runs 2 workers with 2 threads on 1 cores");
}

TEST(CoreSharingTest, EveryOversubscribedHostIsListed) {
  std::vector<v1::Register> workers(2, Worker("vm", 2, 2));
  workers.push_back(Worker("other", 4, 4));
  workers.push_back(Worker("small", 1, 1));
  workers.push_back(Worker("small", 1, 1));
  EXPECT_EQ(HostsSharingCores(workers), (std::set<std::string>{"vm", "small"}));
  EXPECT_THAT(HostsSharingCores({Worker("vm", 8, 2)}), ::testing::IsEmpty());
}

TEST(CoreSharingTest, ASingleWorkerNeverSharesWithItself) {
  // More threads than cores inside one worker is that worker's business, not the pipeline's.
  EXPECT_EQ(DescribeCoreSharing({Worker("vm", 8, 2)}), "");
}

TEST(CoreSharingTest, WorkersWithoutHostFiguresAreAssumedAlone) {
  std::vector<v1::Register> old(4, Worker("", 2, 0));
  EXPECT_EQ(DescribeCoreSharing(old), "");
}

plan::ShardConfig Shard(const std::string& yaml) { return plan::ParseShardConfig("model: m\nworkers:\n" + yaml).value(); }

TEST(ChooseOverlapTest, StagesWithTheirOwnExpertsPipelineStepsWithOneMicroBatchEach) {
  const plan::ShardConfig pipeline = Shard(
      "  - {name: s0, embedding: true, attention: [0, 2], experts: [{layers: [0, 2], ids: all}]}\n"
      "  - {name: s1, attention: [2, 4], lm_head: true, experts: [{layers: [2, 4], ids: all}]}\n");
  const AutomaticOverlap o = ChooseOverlap(pipeline, {Worker("a", 1, 1), Worker("b", 1, 1)}, 4);
  EXPECT_EQ(o.micro_batches, 1);
  EXPECT_EQ(o.steps_in_flight, 2);
  EXPECT_EQ(o.sharing, "");
}

TEST(ChooseOverlapTest, AStageWithExpertsElsewherePingPongsTwoMicroBatches) {
  const plan::ShardConfig disaggregated = Shard(
      "  - {name: s0, embedding: true, attention: [0, 4], lm_head: true, experts: [{layers: [0, 4], ids: [0, 1]}]}\n"
      "  - {name: e0, experts: [{layers: [0, 4], ids: [2, 3]}]}\n");
  const AutomaticOverlap o = ChooseOverlap(disaggregated, {Worker("a", 1, 1), Worker("b", 1, 1)}, 4);
  EXPECT_EQ(o.micro_batches, 2);
  EXPECT_EQ(o.steps_in_flight, 1);
}

// Groups are separate pipelines: the count is per group, one per stage of the longest.
TEST(ChooseOverlapTest, AttentionGroupsCountTheStagesOfTheLongestGroup) {
  const plan::ShardConfig groups = Shard(
      "  - {name: a0, group: a, embedding: true, attention: [0, 2]}\n"
      "  - {name: a1, group: a, attention: [2, 4], lm_head: true}\n"
      "  - {name: b0, group: b, embedding: true, attention: [0, 4], lm_head: true}\n"
      "  - {name: e0, experts: [{layers: [0, 4], ids: all}]}\n");
  const AutomaticOverlap o =
      ChooseOverlap(groups, {Worker("a", 1, 1), Worker("b", 1, 1), Worker("c", 1, 1), Worker("d", 1, 1)}, 4);
  EXPECT_EQ(o.micro_batches, 2);
  EXPECT_EQ(o.steps_in_flight, 2);
}

TEST(ChooseOverlapTest, SharedCoresOrASingleWorkerKeepOneOfEach) {
  const plan::ShardConfig pipeline = Shard(
      "  - {name: s0, embedding: true, attention: [0, 2], experts: [{layers: [0, 4], ids: [0, 1]}]}\n"
      "  - {name: s1, attention: [2, 4], lm_head: true, experts: [{layers: [0, 4], ids: [2, 3]}]}\n");
  const AutomaticOverlap shared = ChooseOverlap(pipeline, {Worker("vm", 2, 2), Worker("vm", 2, 2)}, 4);
  EXPECT_EQ(shared.micro_batches, 1);
  EXPECT_EQ(shared.steps_in_flight, 1);
  EXPECT_EQ(shared.sharing, "host 'vm' runs 2 workers with 4 threads on 2 cores");
  const AutomaticOverlap alone = ChooseOverlap(pipeline, {Worker("vm", 2, 2)}, 4);
  EXPECT_EQ(alone.steps_in_flight, 1);
  EXPECT_EQ(alone.sharing, "there is one worker");
}

}  // namespace
}  // namespace mmx::coordinator
