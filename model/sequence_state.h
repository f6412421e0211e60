// Per-sequence state of the attention layers a process owns: the lightning state (fixed size,
// fp32) and the softmax KV cache (grows by one row per token, in blocks: model/kv_cache.h).
// Owned by whoever runs those layers: a worker's stage executor.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "base/dtype.h"
#include "model/config.h"
#include "model/kv_cache.h"

namespace mmx::model {

struct LayerState {
  std::vector<float> lightning;  // [N, D, D], row = key dim, column = value dim
  PagedKv kv;                    // [length, Nkv*D] K (after RoPE) and V rows
  int64_t length = 0;            // tokens seen by this layer
};

// State a backend keeps outside host memory (a GPU's lightning states and KV cache). The
// SequenceState owns it; the host LayerStates then keep only the lengths.
class DeviceSequenceState {
 public:
  virtual ~DeviceSequenceState() = default;
  virtual int64_t bytes() const = 0;
};

class SequenceState {
 public:
  // Where the lightning states and KV rows live: kHost in LayerState's vectors; kDevice in a
  // backend's DeviceSequenceState (set_device()), the LayerStates keeping the lengths.
  enum class Storage { kHost, kDevice };

  // State for layers [first_layer, end_layer) of `config`, zeroed (a new sequence), its KV cache
  // in `kv_dtype` (kBF16 as the model is served, kF32 golden-exact).
  SequenceState(const ModelConfig& config, int first_layer, int end_layer, DType kv_dtype,
                Storage storage = Storage::kHost);

  LayerState& layer(int l) { return layers_[l - first_layer_]; }
  const LayerState& layer(int l) const { return layers_[l - first_layer_]; }
  int first_layer() const { return first_layer_; }
  int end_layer() const { return first_layer_ + static_cast<int>(layers_.size()); }
  // Tokens processed so far (by the first owned layer).
  int64_t length() const { return layers_.empty() ? 0 : layers_.front().length; }
  // Bytes held now: lightning states plus the KV blocks (host and device).
  int64_t bytes() const;
  // Elements per token of one layer's K (or V) cache: num_key_value_heads * head_dim.
  int64_t kv_width() const { return kv_width_; }
  DType kv_dtype() const { return kv_dtype_; }

  Storage storage() const { return storage_; }
  DeviceSequenceState* device() const { return device_.get(); }
  void set_device(std::unique_ptr<DeviceSequenceState> device) { device_ = std::move(device); }

 private:
  int first_layer_;
  int64_t kv_width_;
  DType kv_dtype_;
  Storage storage_;
  std::vector<LayerState> layers_;
  std::unique_ptr<DeviceSequenceState> device_;
};

}  // namespace mmx::model
