// RankSplit: how a worker with several GPUs (`mmx-worker --device cuda:0,1,...`) shares its
// part of the model among its ranks, the way gpt-fast's tp.py shards a model from outside it: the
// layer math (model/) runs unchanged on each rank's slice. Pure logic, testable without GPUs or
// NCCL; the CUDA worker runs it with NCCL.
//
// - Attention: tensor parallel by whole heads. Rank r holds query heads [q_begin, q_end) and the
//   key/value heads those queries read (GQA): KV heads are split when there are at least as many
//   as ranks, and replicated otherwise (each rank keeps the one KV head its queries share).
// - The lightning output norm is ONE RMSNorm over all heads' features (MODEL.md §3.6), so each
//   rank computes the sum of squares of its own slice, the ranks all-reduce (sum) those partial
//   sums, and each rank normalises its slice with the total (model/layer_recipe.h HeadsRmsNorm).
// - Experts: expert parallel, each expert on one rank, in contiguous blocks as even as they go.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/stage_compute.h"
#include "model/weights.h"

namespace mmx::parallel {

using model::AttentionBlockWeights;
using model::ModelConfig;
using model::MoeWeights;
using model::TailWeights;
using model::WeightsView;

struct RankSlice {
  int q_begin = 0, q_end = 0;    // query heads (lightning and softmax layers)
  int kv_begin = 0, kv_end = 0;  // softmax KV heads
  std::vector<int> experts;      // expert ids this rank hosts
};

// InvalidArgument (saying what to change) when the heads cannot be split evenly: the query
// heads must divide by `ranks`, and the KV heads must divide by `ranks` or `ranks` by them.
absl::StatusOr<std::vector<RankSlice>> SplitAcrossRanks(const ModelConfig& config, int ranks,
                                                        const std::vector<int>& experts_held);

// Experts in contiguous blocks as even as they go, the first (n % ranks) ranks one more.
std::vector<std::vector<int>> ExpertBlocks(const std::vector<int>& experts_held, int ranks);

// The config rank `slice` runs the layer recipe with: its own query and KV heads; the rest as
// `full`.
ModelConfig RankConfig(const ModelConfig& full, const RankSlice& slice);

// One rank's weights: views into the full ones where its share is a block of rows (qkv, gate,
// q/k/v, norms, slopes), copies where it is a block of columns (out_proj, o_proj: each rank
// multiplies its heads' features by their columns, and the ranks' products are summed).
// Replicated: norms, router. Rank 0 alone has the embedding and the tail.
struct RankWeights {
  ModelConfig config;  // RankConfig
  int rank = 0;
  int first_layer = 0;
  std::vector<AttentionBlockWeights> attention;
  std::vector<MoeWeights> experts;  // [L]: this rank's share of each layer's held experts
  const kernels::WeightView* embedding = nullptr;
  const TailWeights* tail = nullptr;
  std::vector<std::vector<char>> copies;  // the column blocks

  WeightsView view() const;
};

// Splits `full` over `ranks` (SplitAcrossRanks' rules; each layer's held experts in blocks).
absl::StatusOr<std::vector<std::unique_ptr<RankWeights>>> SliceWeightsForRanks(const WeightsView& full, int ranks);

}  // namespace mmx::parallel
