#include "parallel/cuda/nccl_rank_group.h"

#include <nccl.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"

namespace mmx::parallel::cuda {

struct NcclRankGroup::Impl {
  std::vector<ncclComm_t> comms;
  std::vector<std::unique_ptr<model::RankCollective>> members;
  std::mutex mu;
  std::atomic<bool> aborted{false};
};

class NcclRankGroup::Member final : public model::RankCollective {
 public:
  Member(Impl* group, int rank, cudaStream_t stream) : group_(group), rank_(rank), stream_(stream) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(group_->comms.size()); }
  absl::Status AllReduceSum(float* x, int64_t n) override { return AllReduce(x, n, ncclFloat); }
  absl::Status AllReduceSum(double* x, int64_t n) override { return AllReduce(x, n, ncclDouble); }

 private:
  absl::Status AllReduce(void* x, int64_t n, ncclDataType_t type) {
    if (n == 0) return absl::OkStatus();
    // NOTE: this narrows, but cannot close, the window in which another rank's thread aborts the
    // communicator while this one enqueues on it; what it prevents is the common case, a rank
    // that failed early and aborted the group before this one reached its next collective.
    if (group_->aborted.load()) {
      return absl::AbortedError("another rank of this worker failed and aborted its NCCL communicators");
    }
    MMX_CUDA_RETURN_IF_ERROR(ncclAllReduce(x, x, static_cast<size_t>(n), type, ncclSum, group_->comms[rank_], stream_));
    return absl::OkStatus();
  }

  Impl* group_;
  int rank_;
  cudaStream_t stream_;
};

NcclRankGroup::NcclRankGroup() : impl_(std::make_unique<Impl>()) {}

absl::StatusOr<std::shared_ptr<NcclRankGroup>> NcclRankGroup::Create(const std::vector<int>& devices) {
  std::shared_ptr<NcclRankGroup> group(new NcclRankGroup());
  group->impl_->comms.resize(devices.size());
  group->impl_->members.resize(devices.size());
  MMX_CUDA_RETURN_IF_ERROR(
      ncclCommInitAll(group->impl_->comms.data(), static_cast<int>(devices.size()), devices.data()));
  return group;
}

NcclRankGroup::~NcclRankGroup() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->aborted) return;  // ncclCommAbort freed them
  for (ncclComm_t c : impl_->comms) {
    if (c != nullptr) ncclCommDestroy(c);
  }
}

model::RankCollective* NcclRankGroup::Member(int rank, cudaStream_t stream) {
  impl_->members[rank] = std::make_unique<class Member>(impl_.get(), rank, stream);
  return impl_->members[rank].get();
}

void NcclRankGroup::Abort() {
  std::lock_guard<std::mutex> lock(impl_->mu);
  if (impl_->aborted) return;
  impl_->aborted = true;  // before the communicators go, so that no rank starts a collective on them
  for (ncclComm_t c : impl_->comms) ncclCommAbort(c);
}

}  // namespace mmx::parallel::cuda
