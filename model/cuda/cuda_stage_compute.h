// The CUDA StageCompute (model/stage_compute.h): one GPU, the weights uploaded into its memory,
// sequence state on it, and model/layer_recipe.h run with CudaLayerOps. Host activations go up
// and come down through pinned memory once per call; within a call everything stays on the GPU.
// Several GPUs in one worker are several of these, one per rank (parallel/cuda/).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include <cuda_runtime_api.h>

#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/rank_collective.h"
#include "model/stage_compute.h"

namespace mmx::model::cuda {

// When the weights are one rank's slice of a worker split over several GPUs.
struct CudaRank {
  // Called once with this GPU's stream (the rank's collectives must be enqueued on it): returns
  // the rank's collective, borrowed: it must outlive the compute.
  std::function<absl::StatusOr<RankCollective*>(cudaStream_t stream)> collective;
  // The upload's progress is reported as (done_before + bytes copied here, total): the ranks of
  // one worker share one progress bar. total 0: this upload's own bytes.
  int64_t progress_done_before = 0;
  int64_t progress_total = 0;
};

// Uploads `weights` to GPU `device` (progress in bytes) and returns the StageCompute that runs
// them. kFailedPrecondition without that GPU; kResourceExhausted when the weights do not fit
// (the message says how much was asked and how much was free); kUnimplemented for weights the
// GPU kernels do not take (non-BF16 matrices, int8 experts).
absl::StatusOr<std::unique_ptr<StageCompute>> CreateCudaStageCompute(int device, const WeightsView& weights,
                                                                     kernels::ActivationPrecision precision,
                                                                     const UploadProgressFn& progress,
                                                                     const CudaRank& rank = {});

// The bytes CreateCudaStageCompute uploads for `weights`.
int64_t CudaUploadBytes(const WeightsView& weights);

// FailedPrecondition, saying what to use instead, when this machine has no GPU `device`.
absl::Status CheckDeviceExists(int device);

// Name, memory and measured copy bandwidth of GPU `device` (model/stage_compute.h DeviceInfo).
absl::StatusOr<DeviceInfo> QueryDevice(int device);

}  // namespace mmx::model::cuda
