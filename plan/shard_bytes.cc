#include "plan/shard_bytes.h"

namespace mmx::plan {

int64_t ShardWeightBytes(const ModelSizes& sizes, const WorkerShard& w, bool int8_experts) {
  int64_t bytes = 0;
  if (w.embedding) bytes += sizes.EmbeddingBytes();
  if (w.lm_head) bytes += sizes.TailBytes();
  if (w.attention) {
    for (int l = w.attention->begin; l < w.attention->end && l < sizes.num_layers; ++l) bytes += sizes.StageLayerBytes(l);
  }
  for (int l = 0; l < sizes.num_layers; ++l) {
    bytes += static_cast<int64_t>(w.ExpertsOfLayer(l, sizes.num_experts).size()) * sizes.ExpertBytes(int8_experts);
  }
  return bytes;
}

}  // namespace mmx::plan
