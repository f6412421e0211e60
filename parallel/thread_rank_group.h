// ThreadRankGroup: the ranks of a split worker run as threads of one process on host memory
// (the CPU twin of a multi-GPU worker's NCCL group): how the multi-rank split is tested without
// GPUs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"
#include "model/rank_collective.h"

namespace mmx::parallel {

// `size` in-process ranks, one thread each. Sums in rank order, so every rank gets the same bits.
// Abort() fails every pending and later collective (a rank that failed will not come).
class ThreadRankGroup {
 public:
  explicit ThreadRankGroup(int size);
  // The collective for `rank` (0 <= rank < size); lives as long as this group.
  model::RankCollective* member(int rank);
  int size() const { return size_; }
  void Abort();

 private:
  class Member;
  friend class Member;
  template <typename T>
  absl::Status AllReduce(int rank, T* x, int64_t n);
  absl::Status Barrier();

  int size_;
  std::vector<std::unique_ptr<model::RankCollective>> members_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  std::vector<void*> buffers_;  // each rank's buffer of the current collective
};

}  // namespace mmx::parallel
