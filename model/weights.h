// The weights of the pieces a process runs, as views into the checkpoint's mmap (no copies; only
// the small norm vectors are converted to fp32). Each loader asks the checkpoint for exactly the
// tensors of its piece, so a worker that owns a shard pages in only that shard.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/checkpoint.h"
#include "model/config.h"

namespace mmx::model {

struct LightningWeights {
  kernels::WeightView qkv;       // [N*3*D, H], per head [q_h | k_h | v_h]
  kernels::WeightView gate;      // [N*D, H]
  kernels::WeightView out;       // [H, N*D]
  std::vector<float> norm;       // [N*D], the output RMSNorm over all heads
  std::vector<float> slopes;     // [N] s_{l,h}: decay exp(-s) per token
};

struct SoftmaxWeights {
  kernels::WeightView q;         // [N*D, H]
  kernels::WeightView k;         // [Nkv*D, H]
  kernels::WeightView v;         // [Nkv*D, H]
  kernels::WeightView o;         // [H, N*D]
  std::vector<float> inv_freq;   // [rotary_dim / 2]
};

// Norms, attention and router of one layer: what an attention stage holds per layer.
struct AttentionBlockWeights {
  int layer = 0;
  AttentionKind kind = AttentionKind::kLightning;
  std::vector<float> input_norm;  // [H]
  std::vector<float> post_norm;   // [H]
  LightningWeights lightning;     // when kind == kLightning
  SoftmaxWeights softmax;         // when kind == kSoftmax
  kernels::WeightView router;     // [E, H]
};

// Views into the checkpoint's mmap, or with int8 experts (model/int8_experts.h) I8 views into
// storage the loading process owns beside them.
struct ExpertWeights {
  kernels::WeightView w1;  // [F, H] gate projection (through SiLU)
  kernels::WeightView w3;  // [F, H] up projection
  kernels::WeightView w2;  // [H, F] down projection
  bool loaded() const { return w1.data != nullptr; }
};

// The experts of one layer this process holds; experts[e].loaded() says which.
struct MoeWeights {
  int layer = 0;
  std::vector<ExpertWeights> experts;  // [E]
};

struct TailWeights {
  std::vector<float> final_norm;  // [H]
  kernels::WeightView lm_head;    // [V, H]
};

// Bytes of a matrix's elements, plus its per-row scales for I8.
inline int64_t WeightBytes(const kernels::WeightView& w) {
  const int64_t scale_bytes = w.scales != nullptr ? w.rows * static_cast<int64_t>(sizeof(float)) : 0;
  return w.rows * w.cols * static_cast<int64_t>(DTypeSize(w.dtype)) + scale_bytes;
}
// Bytes of matrices an attention block reads per step (projections and router).
int64_t AttentionBlockBytes(const AttentionBlockWeights& w);

absl::StatusOr<AttentionBlockWeights> LoadAttentionBlock(const Checkpoint& checkpoint, int layer);
// Loads the listed experts of `layer` (all of them when `expert_ids` is empty).
absl::StatusOr<MoeWeights> LoadExperts(const Checkpoint& checkpoint, int layer,
                                       const std::vector<int>& expert_ids = {});
absl::StatusOr<kernels::WeightView> LoadEmbedding(const Checkpoint& checkpoint);
absl::StatusOr<TailWeights> LoadTail(const Checkpoint& checkpoint);

// Lightning decay rates s_{l,h} for `layer` (MODEL.md §3.3): ALiBi-style base slopes for any
// head count, times the layer factor 1 - l/(L-1) + 1e-5 over all L layers, in fp32.
std::vector<float> LightningSlopes(const ModelConfig& config, int layer);
// RoPE inverse frequencies theta^(-2i/rotary_dim), i < rotary_dim/2, in fp32.
std::vector<float> RopeInvFreq(const ModelConfig& config);

}  // namespace mmx::model
