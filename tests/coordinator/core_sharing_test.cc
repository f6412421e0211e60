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

TEST(CoreSharingTest, ASingleWorkerNeverSharesWithItself) {
  // More threads than cores inside one worker is that worker's business, not the pipeline's.
  EXPECT_EQ(DescribeCoreSharing({Worker("vm", 8, 2)}), "");
}

TEST(CoreSharingTest, WorkersWithoutHostFiguresAreAssumedAlone) {
  std::vector<v1::Register> old(4, Worker("", 2, 0));
  EXPECT_EQ(DescribeCoreSharing(old), "");
}

}  // namespace
}  // namespace mmx::coordinator
