// MakeStageCompute: the one place that knows which backends this build has, and how a worker's
// share of the model goes onto its --device: the CPU, one GPU, or several GPUs as ranks of one
// split (parallel/rank_split.h, parallel/cuda/).
#pragma once

#include <memory>

#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/device_spec.h"
#include "model/stage_compute.h"

namespace mmx::parallel {

// The StageCompute for `device`: the CPU one, a CUDA one that uploads the weights first
// (reporting progress), or for several GPUs a RankedStageCompute over one CUDA one per GPU.
// Clear errors for a build without CUDA, a machine without those GPUs, heads that do not split
// over them, and weights the GPU kernels do not take.
absl::StatusOr<std::unique_ptr<model::StageCompute>> MakeStageCompute(const model::DeviceSpec& device,
                                                                      const model::WeightsView& weights,
                                                                      kernels::ActivationPrecision precision,
                                                                      const model::UploadProgressFn& progress);

// For a CUDA device only (the CPU's figures come from /proc and the worker's own measurement);
// several GPUs are summed. The same errors as MakeStageCompute for a build without CUDA or a
// machine without the GPU.
absl::StatusOr<model::DeviceInfo> QueryCudaDevice(const model::DeviceSpec& device);

}  // namespace mmx::parallel
