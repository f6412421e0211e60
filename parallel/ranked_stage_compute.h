// RankedStageCompute: one worker's StageCompute over several ranks (the GPUs of
// `--device cuda:0,1,...`; threads on the CPU in tests), each rank a StageCompute of its own
// over its slice of the weights (parallel/rank_split.h), given its rank's collective:
//   - attention, tensor parallel: every rank runs the layer recipe on the whole batch with its
//     heads, the ranks' collective summing the norm's squares and the output projections, so
//     each ends with the same w and routing (rank 0's are returned);
//   - experts, expert parallel: each pair runs on the rank holding its expert, all ranks at once;
//   - embedding and tail on rank 0.
// Each rank has a thread of its own per call (collectives need every rank running). A rank whose
// attention fails aborts the group's collectives, so the others return instead of waiting
// forever; the group is unusable after that (NCCL frees aborted communicators), so every later
// AttentionBlock fails with kFailedPrecondition. Expert pairs use no collective: a rank's failure
// there fails the call and aborts nothing. Calls may come from several threads at once (the
// worker's step and expert threads) if each rank's StageCompute allows them (the CUDA one
// serialises its calls).
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/rank_collective.h"
#include "model/stage_compute.h"
#include "parallel/rank_split.h"

namespace mmx::parallel {

using model::BatchLayout;
using model::Routing;
using model::SequenceState;
using model::StageCompute;

class RankedStageCompute final : public StageCompute {
 public:
  // ranks[r] computes weights[r]; `abort` fails the collectives of every rank.
  RankedStageCompute(const ModelConfig& config, std::vector<std::unique_ptr<RankWeights>> weights,
                     std::vector<std::unique_ptr<StageCompute>> ranks, std::function<void()> abort, std::string name);

  std::string device_name() const override { return name_; }
  int64_t device_weight_bytes() const override;
  absl::StatusOr<std::unique_ptr<SequenceState>> NewSequence(int first_layer, int end_layer, DType kv_dtype) override;
  absl::Status Embed(const int32_t* ids, int64_t n, float* x) override;
  absl::Status AttentionBlock(int layer, const BatchLayout& batch, float* x, std::vector<float>* residual,
                              Routing* routing) override;
  absl::StatusOr<int64_t> ExpertPairs(int layer, const float* rows, const int* expert_ids, const float* weights,
                                      int64_t n, float* out) override;
  absl::Status Logits(const float* x, const std::vector<int64_t>& rows, float* logits) override;
  absl::Status FinalNorm(const float* x, const std::vector<int64_t>& rows, float* h) override;

 private:
  // Runs fn(r) for every rank on its own thread; the first error. With `collective` (fn uses the
  // ranks' collectives), a rank's failure aborts the group first.
  absl::Status OnEveryRank(const std::function<absl::Status(int)>& fn, bool collective);

  ModelConfig config_;
  std::vector<std::unique_ptr<RankWeights>> weights_;  // what the ranks' computes read
  std::function<void()> abort_;  // may own the ranks' collectives: they outlive the computes
  std::vector<std::unique_ptr<StageCompute>> ranks_;
  std::atomic<bool> aborted_{false};  // abort_ has run: the collectives are gone
  std::string name_;
};

// The multi-rank split run by `ranks` threads over host memory (a CPU StageCompute per rank,
// ThreadRankGroup): what a `--device cuda:0,...,R-1` worker computes, checkable without GPUs.
absl::StatusOr<std::unique_ptr<StageCompute>> MakeThreadRankedCpuStageCompute(const WeightsView& weights, int ranks);

}  // namespace mmx::parallel
