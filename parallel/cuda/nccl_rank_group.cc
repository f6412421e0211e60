#include "parallel/cuda/nccl_rank_group.h"

#include <nccl.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "parallel/rank_aborts.h"

namespace mmx::parallel::cuda {

struct NcclRankGroup::Impl {
  std::vector<ncclComm_t> comms;
  std::vector<std::unique_ptr<model::RankCollective>> members;
  // Each communicator is aborted by its own rank's thread (ncclCommAbort from another thread
  // could land while that rank is inside a call on it).
  std::unique_ptr<RankAborts> aborts;
};

class NcclRankGroup::Member final : public model::RankCollective {
 public:
  Member(Impl* group, int rank, cudaStream_t stream) : group_(group), rank_(rank), stream_(stream) {}
  int rank() const override { return rank_; }
  int size() const override { return static_cast<int>(group_->comms.size()); }
  absl::Status AllReduceSum(float* x, int64_t n) override { return AllReduce(x, n, ncclFloat); }
  absl::Status AllReduceSum(double* x, int64_t n) override { return AllReduce(x, n, ncclDouble); }

  absl::Status WhileWaiting() override {
    ncclResult_t async = ncclSuccess;
    if (!group_->aborts->aborted(rank_) && ncclCommGetAsyncError(group_->comms[rank_], &async) == ncclSuccess &&
        async != ncclSuccess && async != ncclInProgress) {
      group_->aborts->Mark();  // this rank's communicator failed: the others stop too
    }
    if (group_->aborts->AbortOwnIfMarked(rank_)) return Aborted();
    return absl::OkStatus();
  }

 private:
  static absl::Status Aborted() {
    return absl::AbortedError("a rank of this worker failed; its NCCL communicators were aborted");
  }

  absl::Status AllReduce(void* x, int64_t n, ncclDataType_t type) {
    if (n == 0) return absl::OkStatus();
    if (group_->aborts->AbortOwnIfMarked(rank_)) return Aborted();
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
  Impl* impl = group->impl_.get();
  impl->aborts = std::make_unique<RankAborts>(static_cast<int>(devices.size()),
                                              [impl](int rank) { ncclCommAbort(impl->comms[rank]); });
  MMX_CUDA_RETURN_IF_ERROR(
      ncclCommInitAll(group->impl_->comms.data(), static_cast<int>(devices.size()), devices.data()));
  return group;
}

NcclRankGroup::~NcclRankGroup() {
  if (!impl_->aborts) return;
  // No rank thread is left: abort what the ranks did not (an aborted group), else destroy.
  for (int r : impl_->aborts->AbortRemaining()) {
    if (impl_->comms[r] != nullptr) ncclCommDestroy(impl_->comms[r]);
  }
}

model::RankCollective* NcclRankGroup::Member(int rank, cudaStream_t stream) {
  impl_->members[rank] = std::make_unique<class Member>(impl_.get(), rank, stream);
  return impl_->members[rank].get();
}

void NcclRankGroup::Abort() {
  // Every rank aborts its own communicator at its next collective or while it waits for its GPU.
  impl_->aborts->Mark();
}

}  // namespace mmx::parallel::cuda
