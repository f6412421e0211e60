// RankAborts with fake ranks (threads standing in for a GPU's rank each): after one rank fails
// and marks the group, every communicator is aborted exactly once, by its own rank's thread, and
// never while that thread is inside a (fake) call on it; what no thread reached is aborted when
// the group goes.
#include "parallel/rank_aborts.h"

#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace mmx::parallel {
namespace {

TEST(RankAbortsTest, EachRankAbortsItsOwnCommunicatorOnceFromItsOwnThread) {
  constexpr int kRanks = 4;
  std::mutex mu;
  std::vector<std::thread::id> aborted_by(kRanks);
  std::vector<int> aborts(kRanks, 0);
  std::vector<std::atomic<bool>> inside_call(kRanks);
  std::atomic<int> aborted_mid_call{0};
  RankAborts group(kRanks, [&](int r) {
    if (inside_call[r].load()) ++aborted_mid_call;
    std::lock_guard<std::mutex> lock(mu);
    aborted_by[r] = std::this_thread::get_id();
    ++aborts[r];
  });
  std::vector<std::thread::id> rank_thread(kRanks);
  std::vector<std::thread> threads;
  for (int r = 0; r < kRanks; ++r) {
    threads.emplace_back([&, r] {
      rank_thread[r] = std::this_thread::get_id();
      for (int step = 0;; ++step) {
        // A collective: refused once the group is marked, else a call "on the communicator".
        if (group.AbortOwnIfMarked(r)) break;
        inside_call[r].store(true);
        std::this_thread::yield();
        inside_call[r].store(false);
        if (r == 2 && step == 50) {  // rank 2 fails mid-run
          group.Mark();
          group.AbortOwnIfMarked(r);
          break;
        }
        // Waiting for the device: the poll where a waiting rank notices the mark.
        if (group.AbortOwnIfMarked(r)) break;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (int r = 0; r < kRanks; ++r) {
    EXPECT_EQ(aborts[r], 1) << "rank " << r;
    EXPECT_EQ(aborted_by[r], rank_thread[r]) << "rank " << r << " was aborted from another thread";
    EXPECT_TRUE(group.aborted(r));
  }
  EXPECT_EQ(aborted_mid_call.load(), 0);
  EXPECT_TRUE(group.AbortRemaining().empty());
  for (int r = 0; r < kRanks; ++r) EXPECT_EQ(aborts[r], 1) << "aborted twice: rank " << r;
}

TEST(RankAbortsTest, RanksThatNeverLookedAreAbortedWhenTheGroupGoesAndAnUnmarkedGroupAbortsNothing) {
  std::vector<int> aborts(3, 0);
  RankAborts group(3, [&](int r) { ++aborts[r]; });
  EXPECT_FALSE(group.AbortOwnIfMarked(1));  // not marked: nothing happens
  EXPECT_EQ(aborts, (std::vector<int>{0, 0, 0}));
  group.Mark();
  EXPECT_TRUE(group.AbortOwnIfMarked(1));
  EXPECT_EQ(group.AbortRemaining(), std::vector<int>{});
  EXPECT_EQ(aborts, (std::vector<int>{1, 1, 1}));

  std::vector<int> untouched(2, 0);
  RankAborts healthy(2, [&](int r) { ++untouched[r]; });
  EXPECT_EQ(healthy.AbortRemaining(), (std::vector<int>{0, 1}));  // destroyed normally by the owner
  EXPECT_EQ(untouched, (std::vector<int>{0, 0}));
}

}  // namespace
}  // namespace mmx::parallel
