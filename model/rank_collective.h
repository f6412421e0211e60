// RankCollective: the one collective the ranks of a multi-device worker need, a sum over ranks
// (all-reduce) of a buffer every rank holds. The CUDA worker's ranks use NCCL on their GPUs'
// streams (model/cuda/); ThreadRankGroup here runs ranks as threads of one process on host
// memory, which is how the multi-rank split is tested without GPUs.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/status/status.h"

namespace mmx::model {

class RankCollective {
 public:
  virtual ~RankCollective() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // x[i] = sum over ranks of x[i], for i < n; every rank calls with the same n, in the same
  // order of calls. Every rank ends with bit-identical values (the replicated activations after
  // a tensor-parallel projection must agree exactly, or the ranks' routings could differ).
  virtual absl::Status AllReduceSum(float* x, int64_t n) = 0;
  virtual absl::Status AllReduceSum(double* x, int64_t n) = 0;
};

// `size` in-process ranks, one thread each. Sums in rank order, so every rank gets the same bits.
// Abort() fails every pending and later collective (a rank that failed will not come).
class ThreadRankGroup {
 public:
  explicit ThreadRankGroup(int size);
  // The collective for `rank` (0 <= rank < size); lives as long as this group.
  RankCollective* member(int rank);
  int size() const { return size_; }
  void Abort();

 private:
  class Member;
  friend class Member;
  template <typename T>
  absl::Status AllReduce(int rank, T* x, int64_t n);
  absl::Status Barrier();

  int size_;
  std::vector<std::unique_ptr<RankCollective>> members_;
  std::mutex mu_;
  std::condition_variable cv_;
  int arrived_ = 0;
  uint64_t generation_ = 0;
  bool aborted_ = false;
  std::vector<void*> buffers_;  // each rank's buffer of the current collective
};

}  // namespace mmx::model
