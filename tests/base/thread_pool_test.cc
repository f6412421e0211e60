#include "base/thread_pool.h"

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mmx {
namespace {

TEST(ThreadPoolTest, RunOnAllRunsEveryIndexOnce) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(3);
  for (int round = 0; round < 200; ++round) pool.RunOnAll([&](int t) { hits[t].fetch_add(1); });
  // Each index exactly once per call, whichever thread ran it.
  for (int t = 0; t < 3; ++t) EXPECT_EQ(hits[t].load(), 200);
}

TEST(ThreadPoolTest, ParallelForCoversTheRangeExactlyOnceInAlignedPieces) {
  ThreadPool pool(2);
  for (int64_t n : {1, 7, 64, 1000, 4097}) {
    std::vector<int> seen(n, 0);
    pool.ParallelFor(n, 16, [&](int64_t b, int64_t e) {
      EXPECT_EQ(b % 16, 0);
      for (int64_t i = b; i < e; ++i) ++seen[i];
    });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPoolTest, RunTasksRunsEachTaskExactlyOnce) {
  ThreadPool pool(2);
  for (int64_t n : {1, 2, 5, 333}) {
    std::vector<std::atomic<int>> hits(n);
    pool.RunTasks(n, [&](int64_t i) { hits[i].fetch_add(1); });
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[i].load(), 1) << "n=" << n << " i=" << i;
  }
}

TEST(ThreadPoolTest, ManyTinyJobsInARowAllComplete) {
  // Exercises the join/close handshake: workers often arrive after the caller has done all work.
  ThreadPool pool(4);
  int64_t total = 0;
  for (int round = 0; round < 20000; ++round) {
    std::atomic<int64_t> sum{0};
    pool.RunTasks(3, [&](int64_t i) { sum.fetch_add(i + 1); });
    total += sum.load();
  }
  EXPECT_EQ(total, 20000 * 6);
}

TEST(ThreadPoolTest, JobsFromTwoCallerThreadsAreSerialisedCorrectly) {
  ThreadPool pool(2);
  std::atomic<int64_t> total{0};
  auto submitter = [&] {
    for (int round = 0; round < 2000; ++round) {
      pool.ParallelFor(64, 1, [&](int64_t b, int64_t e) { total.fetch_add(e - b); });
    }
  };
  std::thread a(submitter), b(submitter);
  a.join();
  b.join();
  EXPECT_EQ(total.load(), 2 * 2000 * 64);
}

TEST(ThreadPoolTest, WorkersWakeAfterSleeping) {
  ThreadPool pool(2);
  std::atomic<int> hits{0};
  pool.RunOnAll([&](int) { hits.fetch_add(1); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));  // past the spin budget
  pool.RunOnAll([&](int) { hits.fetch_add(1); });
  EXPECT_EQ(hits.load(), 4);  // two jobs x two indices
}

TEST(ThreadPoolTest, CallerSleepsUntilASlowWorkerFinishesItsTask) {
  // A task far longer than the caller's spin (as when a worker is descheduled mid-task): the
  // caller must neither return early nor miss the wake-up, round after round.
  ThreadPool pool(3, /*spin_micros=*/0);
  for (int round = 0; round < 20; ++round) {
    std::atomic<int> done{0};
    pool.RunTasks(3, [&](int64_t i) {
      if (i != 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));
      done.fetch_add(1);
    });
    ASSERT_EQ(done.load(), 3) << "round " << round;
  }
}

}  // namespace
}  // namespace mmx
