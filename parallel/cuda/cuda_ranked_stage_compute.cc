#include "parallel/cuda/cuda_ranked_stage_compute.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/cuda/cuda_stage_compute.h"
#include "parallel/cuda/nccl_rank_group.h"
#include "parallel/rank_split.h"
#include "parallel/ranked_stage_compute.h"

namespace mmx::parallel {

absl::StatusOr<std::unique_ptr<model::StageCompute>> CreateCudaRankedStageCompute(
    const std::vector<int>& devices, const model::WeightsView& weights, kernels::ActivationPrecision precision,
    const model::UploadProgressFn& progress) {
  const int R = static_cast<int>(devices.size());
  for (int d : devices) MMX_RETURN_IF_ERROR(model::cuda::CheckDeviceExists(d));
  MMX_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<RankWeights>> sliced, SliceWeightsForRanks(weights, R));
  MMX_ASSIGN_OR_RETURN(std::shared_ptr<cuda::NcclRankGroup> group, cuda::NcclRankGroup::Create(devices));
  int64_t grand_total = 0;
  for (const auto& w : sliced) grand_total += model::cuda::CudaUploadBytes(w->view());
  std::vector<std::unique_ptr<model::StageCompute>> ranks;
  std::string names;
  int64_t done = 0;
  for (int r = 0; r < R; ++r) {
    model::cuda::CudaRank rank;
    rank.collective = [group, r](cudaStream_t stream) -> absl::StatusOr<model::RankCollective*> {
      return group->Member(r, stream);
    };
    rank.progress_done_before = done;
    rank.progress_total = grand_total;
    MMX_ASSIGN_OR_RETURN(std::unique_ptr<model::StageCompute> compute,
                         model::cuda::CreateCudaStageCompute(devices[r], sliced[r]->view(), precision, progress, rank));
    done += compute->device_weight_bytes();
    absl::StrAppend(&names, r == 0 ? "" : ", ", compute->device_name());
    ranks.push_back(std::move(compute));
  }
  // The group lives as long as the abort function: as long as the ranked compute.
  return std::make_unique<RankedStageCompute>(*weights.config, std::move(sliced), std::move(ranks),
                                              [group] { group->Abort(); },
                                              absl::StrCat(names, ", ", R, " ranks over NCCL"));
}

}  // namespace mmx::parallel
