// LoadedShard: the weights one worker holds, per its shard config entry. Only the tensors of the
// worker's roles are touched; "loading" maps them and pages them in (so the first step does not
// pay for disk reads), reporting progress by bytes. With `expert_dtype: int8` the experts are
// quantized instead of paged in (model/int8_experts.h) and the LoadedShard owns the int8 copies.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint.h"
#include "model/device_spec.h"
#include "model/int8_experts.h"
#include "model/stage_compute.h"
#include "model/tensor_digests.h"
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
  model::ExpertDType expert_dtype = model::ExpertDType::kBf16;
  std::vector<model::Int8Matrix> int8_experts;  // with int8 experts: what their I8 views point into
  int64_t weight_bytes = 0;  // bytes held: mapped tensors plus int8 copies (not their sources)
  // SHA-256 of every checkpoint tensor it read: the coordinator checks them (tensor_digests.h).
  model::TensorDigests tensor_digests;
  // Runs the pieces: on the host over the views above (LoadShard's default), or on a GPU with
  // its own copies of them (PlaceShard).
  std::unique_ptr<model::StageCompute> compute;

  // The pieces above as the view a StageCompute takes (valid while this object lives).
  model::WeightsView weights_view() const;

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

// Opens `model_dir`, checks the checkpoint against its config, and loads the tensors of `shard`,
// its experts in `expert_dtype` (ShardConfig::expert_dtype). Progress counts checkpoint bytes
// read, so a quantized expert counts its source's bytes. page_in = false maps the tensors
// without reading them (a GPU worker: its upload reads each once).
absl::StatusOr<std::unique_ptr<LoadedShard>> LoadShard(const std::string& model_dir,
                                                       const plan::WorkerShard& shard,
                                                       model::ExpertDType expert_dtype,
                                                       const ProgressFn& progress, bool page_in = true);

// Moves the shard's computation to `device`: for cuda:N uploads the held weights to that GPU
// (progress in bytes) and replaces `shard.compute`; for cpu leaves it as it is. Errors say what
// to change (no CUDA in this build, no such GPU, out of GPU memory, int8 experts on a GPU).
absl::Status PlaceShard(LoadedShard& shard, const model::DeviceSpec& device, kernels::ActivationPrecision precision,
                        const ProgressFn& progress);

}  // namespace mmx::worker
