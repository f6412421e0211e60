// Per-sequence state of the attention layers a process owns: the lightning state (fixed size,
// fp32) and the softmax KV cache (grows by one row per token). Owned by whoever runs those
// layers: the local engine, or later the attention stage of a worker.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "model/config.h"

namespace mmx::model {

struct LayerState {
  std::vector<float> lightning;  // [N, D, D], row = key dim, column = value dim
  std::vector<float> keys;       // [length, Nkv*D], after RoPE
  std::vector<float> values;     // [length, Nkv*D]
  int64_t length = 0;            // tokens seen by this layer
};

class SequenceState {
 public:
  // State for layers [first_layer, end_layer) of `config`, zeroed (a new sequence).
  SequenceState(const ModelConfig& config, int first_layer, int end_layer);

  LayerState& layer(int l) { return layers_[l - first_layer_]; }
  const LayerState& layer(int l) const { return layers_[l - first_layer_]; }
  int first_layer() const { return first_layer_; }
  int end_layer() const { return first_layer_ + static_cast<int>(layers_.size()); }
  // Tokens processed so far (by the first owned layer).
  int64_t length() const { return layers_.empty() ? 0 : layers_.front().length; }
  // Bytes held now: lightning states plus the KV rows cached.
  int64_t bytes() const;

 private:
  int first_layer_;
  std::vector<LayerState> layers_;
};

}  // namespace mmx::model
