#include "model/sequence_state.h"

namespace mmx::model {

SequenceState::SequenceState(const ModelConfig& config, int first_layer, int end_layer, DType kv_dtype, Storage storage)
    : first_layer_(first_layer), kv_width_(config.kv_width()), kv_dtype_(kv_dtype), storage_(storage) {
  layers_.resize(end_layer - first_layer);
  const size_t lightning_size =
      static_cast<size_t>(config.num_attention_heads) * config.head_dim * config.head_dim;
  for (int l = first_layer; l < end_layer; ++l) {
    if (storage != Storage::kHost) continue;
    if (config.is_softmax(l)) {
      layers_[l - first_layer].kv = PagedKv(kv_width_, kv_dtype);
    } else {
      layers_[l - first_layer].lightning.assign(lightning_size, 0.f);
    }
  }
}

int64_t SequenceState::bytes() const {
  int64_t total = 0;
  for (const LayerState& s : layers_) total += static_cast<int64_t>(s.lightning.size() * sizeof(float)) + s.kv.bytes();
  if (device_) total += device_->bytes();
  return total;
}

}  // namespace mmx::model
