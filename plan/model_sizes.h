// ModelSizes: how many parameters and bytes each part of a model has, counted from the tensor
// list model::ExpectedTensors gives for its config.json (so the planner and the loader can never
// disagree about what exists), plus the per-sequence state sizes of MODEL.md §3.7 and §4.3.
// Pure arithmetic: no placement, no hardware.
#pragma once

#include <cstdint>
#include <vector>

#include "base/dtype.h"
#include "model/config.h"

namespace mmx::plan {

// Bytes per element as the runtime holds them. Weights stay in the checkpoint's bf16 (mmap);
// the softmax KV cache is in the served kv_dtype (bf16 by default, as MODEL.md §4.3; counted by
// model/state_bytes.h); the lightning state is fp32 (MODEL.md §3.4); activations between
// workers are fp32 rows, as worker/stage_executor.cc sends them.
inline constexpr int64_t kWeightBytes = 2;
inline constexpr int64_t kLightningStateBytes = 4;
inline constexpr int64_t kActivationBytes = 4;
inline constexpr int64_t kInt8ScaleBytes = 2;  // one bf16 scale per output channel

struct ModelSizes {
  int num_layers = 0;         // L
  int num_experts = 0;        // E
  int experts_per_token = 0;  // K
  int64_t hidden = 0;         // H
  int64_t intermediate = 0;   // F
  int64_t vocab = 0;          // V
  int64_t num_heads = 0;      // N
  int64_t head_dim = 0;       // D
  int64_t num_kv_heads = 0;

  std::vector<bool> is_softmax;          // [L]
  std::vector<int64_t> attention_params;  // [L] the layer's self_attn.* tensors
  std::vector<int64_t> router_params;     // [L] block_sparse_moe.gate
  std::vector<int64_t> norm_params;       // [L] input + post-attention RMSNorm
  int64_t expert_params = 0;              // one expert: w1 + w2 + w3
  int64_t expert_output_channels = 0;     // rows of w1, w2, w3: the int8 scales of one expert
  int64_t embedding_params = 0;
  int64_t lm_head_params = 0;
  int64_t final_norm_params = 0;
  int64_t total_params = 0;               // every tensor of the checkpoint

  // What an attention stage holds for layer l: attention, router and the two norms.
  int64_t StageLayerParams(int l) const { return attention_params[l] + router_params[l] + norm_params[l]; }
  int64_t StageLayerBytes(int l) const { return StageLayerParams(l) * kWeightBytes; }
  // One expert's bytes: bf16, or int8 weights plus a bf16 scale per output channel.
  int64_t ExpertBytes(bool int8) const {
    return int8 ? expert_params + expert_output_channels * kInt8ScaleBytes : expert_params * kWeightBytes;
  }
  int64_t EmbeddingBytes() const { return embedding_params * kWeightBytes; }
  int64_t TailBytes() const { return (lm_head_params + final_norm_params) * kWeightBytes; }

  // Softmax KV bytes one token adds to layer l in `kv_dtype` (0 for lightning layers).
  int64_t KvBytesPerToken(int l, DType kv_dtype) const {
    return is_softmax[l] ? 2 * num_kv_heads * head_dim * static_cast<int64_t>(DTypeSize(kv_dtype)) : 0;
  }
  // Lightning state bytes of one sequence in layer l (0 for softmax layers): [N, D, D] fp32.
  int64_t LightningStateBytes(int l) const {
    return is_softmax[l] ? 0 : num_heads * head_dim * head_dim * kLightningStateBytes;
  }

  int64_t num_expert_pairs() const { return int64_t{num_layers} * num_experts; }
  int64_t all_expert_params() const { return expert_params * num_expert_pairs(); }
  // Parameters one token uses: K experts per layer, all attention, routers and norms (the final
  // norm too). Like the published 45.9B, this leaves out embed_tokens and lm_head.
  int64_t ActiveParamsPerToken() const;
  int64_t SumOver(const std::vector<int64_t>& per_layer, bool softmax_layers) const;
  int num_softmax_layers() const;
};

// Counts `config`'s tensors (model::ExpectedTensors) by role. A tensor name the classifier does
// not know is a programming error (the list and this file disagree), checked with MMX_CHECK.
ModelSizes ComputeModelSizes(const model::ModelConfig& config);

}  // namespace mmx::plan
