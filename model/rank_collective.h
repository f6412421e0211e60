// RankCollective: the one collective the ranks of a multi-device worker need, a sum over ranks
// (all-reduce) of a buffer every rank holds, in the memory its compute backend works on. The
// layer recipe (model/layer_recipe.h) is handed one where a rank's results are partial; the
// implementations live outside model/ (parallel/: threads on host memory, NCCL on GPUs).
#pragma once

#include <cstdint>

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
  // Called over and over by a rank's own thread while it waits for its device (a GPU rank's
  // CudaLayerOps::Sync): where a rank whose group was aborted aborts its own communicator, from
  // its own thread (parallel/rank_aborts.h). Non-OK ends the wait with that status.
  virtual absl::Status WhileWaiting() { return absl::OkStatus(); }
};

}  // namespace mmx::model
