// LoadedShard: the weights one worker holds, per its shard config entry. Only the tensors of the
// worker's roles are touched; "loading" maps them and pages them in (so the first step does not
// pay for disk reads), reporting progress by bytes.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint.h"
#include "model/weights.h"
#include "plan/shard_config.h"
#include "transport/wire_check.h"

namespace mmx::worker {

struct LoadedShard {
  std::unique_ptr<model::Checkpoint> checkpoint;
  plan::WorkerShard shard;
  std::optional<kernels::WeightView> embedding;
  std::optional<plan::LayerRange> attention;
  std::vector<model::AttentionBlockWeights> attention_blocks;  // [attention->end - begin]
  std::vector<model::MoeWeights> experts;                      // [L]; only held experts loaded
  std::optional<model::TailWeights> tail;
  int64_t weight_bytes = 0;

  const model::ModelConfig& config() const { return checkpoint->config(); }
  transport::WireLimits wire_limits() const {
    const model::ModelConfig& c = config();
    return transport::WireLimits{c.hidden_size, c.vocab_size, c.num_hidden_layers, c.num_local_experts};
  }
  bool HoldsExpert(int layer, int expert) const {
    return experts[layer].experts[expert].loaded();
  }
};

// Called with (bytes done, bytes total) as tensors are paged in.
using ProgressFn = std::function<void(int64_t, int64_t)>;

// Opens `model_dir`, checks the checkpoint against its config, and loads the tensors of `shard`.
absl::StatusOr<std::unique_ptr<LoadedShard>> LoadShard(const std::string& model_dir,
                                                       const plan::WorkerShard& shard,
                                                       const ProgressFn& progress);

}  // namespace mmx::worker
