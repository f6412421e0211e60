// RankAborts: who aborts which rank's communicator, and from where. A rank that fails marks the
// group aborted (any thread). Each rank then aborts its own communicator from its own thread, at
// the next point it would touch it (a collective, or a poll while it waits for its device), so
// no communicator is ever aborted while its rank's thread is inside a call on it (NCCL's
// communicators are not safe to abort from another thread mid-call). What no rank thread got
// to is aborted when the group goes (AbortRemaining, from the one thread left).
//
// Thread-safe. NCCL-free, so the ordering is tested with fake ranks (tests/parallel/).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <vector>

namespace mmx::parallel {

class RankAborts {
 public:
  // `abort_own(r)` aborts rank r's communicator; called at most once per rank.
  RankAborts(int ranks, std::function<void(int rank)> abort_own);

  // Any thread: the group is aborted; no rank starts another collective.
  void Mark() { marked_.store(true); }
  bool marked() const { return marked_.load(); }
  // Rank `rank`'s own thread: when the group is marked, aborts its communicator (once) and
  // returns true (true again on later calls); false while the group is not marked.
  bool AbortOwnIfMarked(int rank);
  // Whether rank `rank`'s communicator was aborted.
  bool aborted(int rank) const { return done_[rank].load(); }
  // When the group goes (no rank thread left): aborts the communicators the ranks did not.
  // Returns the ranks whose communicators were not aborted at all (the group was never
  // marked): their owner destroys them normally.
  std::vector<int> AbortRemaining();

 private:
  std::atomic<bool> marked_{false};
  std::unique_ptr<std::atomic<bool>[]> done_;
  const int ranks_;
  std::function<void(int)> abort_own_;
};

}  // namespace mmx::parallel
