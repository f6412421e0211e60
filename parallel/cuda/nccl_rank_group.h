// NcclRankGroup: the collectives of one worker's GPUs (its ranks) over NCCL, one communicator per
// GPU made in this process (ncclCommInitAll: one process drives every rank, so no unique id has
// to travel). Each rank's RankCollective enqueues on that rank's compute stream, so a collective
// runs after the kernels that produced its input and before those that read its output.
//
// Abort() (a rank failed mid-collective) marks the group; each rank then aborts its own
// communicator from its own thread, at its next collective or while it waits for its GPU
// (RankCollective::WhileWaiting, polled by CudaLayerOps::Sync), which makes its pending
// collective return (parallel/rank_aborts.h). The group is unusable after it: every later
// collective returns kAborted.
#pragma once

#include <memory>
#include <vector>

#include <cuda_runtime_api.h>

#include "absl/status/statusor.h"
#include "model/rank_collective.h"

namespace mmx::parallel::cuda {

class NcclRankGroup {
 public:
  // One communicator per device in `devices`, rank r on devices[r].
  static absl::StatusOr<std::shared_ptr<NcclRankGroup>> Create(const std::vector<int>& devices);
  ~NcclRankGroup();

  // Rank `rank`'s collective, enqueueing on `stream` (the rank's compute stream); lives as long
  // as the group. Call once per rank.
  model::RankCollective* Member(int rank, cudaStream_t stream);
  void Abort();

 private:
  class Member;
  struct Impl;
  NcclRankGroup();
  std::unique_ptr<Impl> impl_;
};

}  // namespace mmx::parallel::cuda
