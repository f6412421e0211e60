// The CUDA StageCompute (model/stage_compute.h): one GPU, the weights uploaded into its memory,
// sequence state on it, and model/layer_recipe.h run with CudaLayerOps. Host activations go up
// and come down through pinned memory once per call; within a call everything stays on the GPU.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/stage_compute.h"

namespace mmx::model::cuda {

// Uploads `weights` to GPU `device` (progress in bytes) and returns the StageCompute that runs
// them. kFailedPrecondition without that GPU; kResourceExhausted when the weights do not fit
// (the message says how much was asked and how much was free); kUnimplemented for weights the
// GPU kernels do not take (non-BF16 matrices, int8 experts).
absl::StatusOr<std::unique_ptr<StageCompute>> CreateCudaStageCompute(int device, const WeightsView& weights,
                                                                     kernels::ActivationPrecision precision,
                                                                     const UploadProgressFn& progress);

// One worker over several GPUs (`--device cuda:0,1,...`): the weights split over them
// (model/rank_split.h: heads tensor parallel, experts in blocks), NCCL communicators made in
// this process (ncclCommInitAll: one process drives every rank, so no id needs to travel),
// and a RankedStageCompute running a CUDA StageCompute per GPU.
absl::StatusOr<std::unique_ptr<StageCompute>> CreateCudaRankedStageCompute(const std::vector<int>& devices,
                                                                           const WeightsView& weights,
                                                                           kernels::ActivationPrecision precision,
                                                                           const UploadProgressFn& progress);

// Name, memory and measured copy bandwidth of GPU `device` (model/stage_compute.h DeviceInfo).
absl::StatusOr<DeviceInfo> QueryDevice(int device);

}  // namespace mmx::model::cuda
