// One worker over several GPUs (`--device cuda:0,1,...`): the weights split over them
// (parallel/rank_split.h: heads tensor parallel, experts in blocks), an NCCL group of their
// communicators (parallel/cuda/nccl_rank_group.h), and a RankedStageCompute running a CUDA
// StageCompute per GPU with its rank's collective.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/stage_compute.h"

namespace mmx::parallel {

absl::StatusOr<std::unique_ptr<model::StageCompute>> CreateCudaRankedStageCompute(
    const std::vector<int>& devices, const model::WeightsView& weights, kernels::ActivationPrecision precision,
    const model::UploadProgressFn& progress);

}  // namespace mmx::parallel
