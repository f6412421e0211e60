#include "parallel/thread_rank_group.h"

#include <algorithm>

#include "base/status_macros.h"

namespace mmx::parallel {

class ThreadRankGroup::Member final : public model::RankCollective {
 public:
  Member(ThreadRankGroup* group, int rank) : group_(group), rank_(rank) {}
  int rank() const override { return rank_; }
  int size() const override { return group_->size_; }
  absl::Status AllReduceSum(float* x, int64_t n) override { return group_->AllReduce(rank_, x, n); }
  absl::Status AllReduceSum(double* x, int64_t n) override { return group_->AllReduce(rank_, x, n); }

 private:
  ThreadRankGroup* group_;
  int rank_;
};

ThreadRankGroup::ThreadRankGroup(int size) : size_(size), buffers_(size) {
  for (int r = 0; r < size; ++r) members_.push_back(std::make_unique<Member>(this, r));
}

model::RankCollective* ThreadRankGroup::member(int rank) { return members_[rank].get(); }

void ThreadRankGroup::Abort() {
  std::lock_guard<std::mutex> lock(mu_);
  aborted_ = true;
  cv_.notify_all();
}

absl::Status ThreadRankGroup::Barrier() {
  std::unique_lock<std::mutex> lock(mu_);
  if (aborted_) return absl::AbortedError("another rank of this worker failed");
  const uint64_t generation = generation_;
  if (++arrived_ == size_) {
    arrived_ = 0;
    ++generation_;
    cv_.notify_all();
    return absl::OkStatus();
  }
  cv_.wait(lock, [&] { return generation_ != generation || aborted_; });
  if (generation_ == generation) return absl::AbortedError("another rank of this worker failed");
  return absl::OkStatus();
}

template <typename T>
absl::Status ThreadRankGroup::AllReduce(int rank, T* x, int64_t n) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    buffers_[rank] = x;
  }
  MMX_RETURN_IF_ERROR(Barrier());  // every rank's buffer is posted
  std::vector<T> sum(static_cast<const T*>(buffers_[0]), static_cast<const T*>(buffers_[0]) + n);
  for (int r = 1; r < size_; ++r) {
    const T* other = static_cast<const T*>(buffers_[r]);
    for (int64_t i = 0; i < n; ++i) sum[i] += other[i];
  }
  // Everyone has read every buffer before anyone overwrites its own (a rank can post its next
  // collective's buffer only after this barrier too, and nobody reads buffers_ past it).
  MMX_RETURN_IF_ERROR(Barrier());
  std::copy(sum.begin(), sum.end(), x);
  return absl::OkStatus();
}

}  // namespace mmx::parallel
