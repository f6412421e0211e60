#include "model/weights.h"

#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::model {
namespace {

std::string LayerPrefix(int layer) { return absl::StrCat("model.layers.", layer, "."); }

// ALiBi slopes for a power-of-two head count n: start^(h+1), start = 2^(-8/n).
std::vector<double> PowerOfTwoSlopes(int n) {
  const double start = std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(n)) - 3)));
  std::vector<double> slopes(n);
  // start * ratio**h with ratio = start, as the original writes it (same double rounding).
  for (int h = 0; h < n; ++h) slopes[h] = start * std::pow(start, static_cast<double>(h));
  return slopes;
}

// The original's get_slopes(n): for non powers of two, the p = 2^floor(log2 n) slopes followed by
// the even-indexed entries of the 2p list, n - p of them.
std::vector<double> BaseSlopes(int n) {
  if ((n & (n - 1)) == 0) return PowerOfTwoSlopes(n);
  int p = 1;
  while (p * 2 <= n) p *= 2;
  std::vector<double> slopes = PowerOfTwoSlopes(p);
  std::vector<double> extra = PowerOfTwoSlopes(2 * p);
  for (int i = 0; static_cast<int>(slopes.size()) < n; i += 2) slopes.push_back(extra[i]);
  return slopes;
}

}  // namespace

std::vector<float> LightningSlopes(const ModelConfig& config, int layer) {
  const int num_layers = config.num_hidden_layers;
  // The original divides by L-1 and so fails at L = 1; vLLM uses factor 1 + 1e-5 there.
  const double factor =
      num_layers > 1 ? 1.0 - static_cast<double>(layer) / (num_layers - 1) + 1e-5 : 1.0 + 1e-5;
  std::vector<double> base = BaseSlopes(config.num_attention_heads);
  std::vector<float> slopes(base.size());
  // The original stores the base slopes as an fp32 tensor and multiplies by the factor in fp32.
  for (size_t h = 0; h < base.size(); ++h) {
    slopes[h] = static_cast<float>(base[h]) * static_cast<float>(factor);
  }
  return slopes;
}

std::vector<float> RopeInvFreq(const ModelConfig& config) {
  const int half = config.rotary_dim / 2;
  std::vector<float> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    float exponent = static_cast<float>(2 * i) / static_cast<float>(config.rotary_dim);
    inv_freq[i] = 1.0f / static_cast<float>(std::pow(config.rope_theta, static_cast<double>(exponent)));
  }
  return inv_freq;
}

int64_t AttentionBlockBytes(const AttentionBlockWeights& w) {
  int64_t bytes = WeightBytes(w.router);
  if (w.kind == AttentionKind::kLightning) {
    bytes += WeightBytes(w.lightning.qkv) + WeightBytes(w.lightning.gate) + WeightBytes(w.lightning.out);
  } else {
    bytes += WeightBytes(w.softmax.q) + WeightBytes(w.softmax.k) + WeightBytes(w.softmax.v) +
             WeightBytes(w.softmax.o);
  }
  return bytes;
}

absl::StatusOr<AttentionBlockWeights> LoadAttentionBlock(const Checkpoint& checkpoint, int layer) {
  const ModelConfig& c = checkpoint.config();
  const std::string p = LayerPrefix(layer);
  const int64_t hidden = c.hidden_size;
  AttentionBlockWeights w;
  w.layer = layer;
  w.kind = c.attention_kind(layer);
  MMX_ASSIGN_OR_RETURN(w.input_norm, checkpoint.VectorF32(p + "input_layernorm.weight", hidden));
  MMX_ASSIGN_OR_RETURN(w.post_norm,
                       checkpoint.VectorF32(p + "post_attention_layernorm.weight", hidden));
  MMX_ASSIGN_OR_RETURN(w.router, checkpoint.Matrix(p + "block_sparse_moe.gate.weight",
                                                   c.num_local_experts, hidden));
  const std::string a = p + "self_attn.";
  if (w.kind == AttentionKind::kLightning) {
    LightningWeights& lw = w.lightning;
    MMX_ASSIGN_OR_RETURN(lw.qkv, checkpoint.Matrix(a + "qkv_proj.weight", 3 * c.q_width(), hidden));
    MMX_ASSIGN_OR_RETURN(lw.gate, checkpoint.Matrix(a + "output_gate.weight", c.q_width(), hidden));
    MMX_ASSIGN_OR_RETURN(lw.out, checkpoint.Matrix(a + "out_proj.weight", hidden, c.q_width()));
    MMX_ASSIGN_OR_RETURN(lw.norm, checkpoint.VectorF32(a + "norm.weight", c.q_width()));
    lw.slopes = LightningSlopes(c, layer);
  } else {
    SoftmaxWeights& sw = w.softmax;
    MMX_ASSIGN_OR_RETURN(sw.q, checkpoint.Matrix(a + "q_proj.weight", c.q_width(), hidden));
    MMX_ASSIGN_OR_RETURN(sw.k, checkpoint.Matrix(a + "k_proj.weight", c.kv_width(), hidden));
    MMX_ASSIGN_OR_RETURN(sw.v, checkpoint.Matrix(a + "v_proj.weight", c.kv_width(), hidden));
    MMX_ASSIGN_OR_RETURN(sw.o, checkpoint.Matrix(a + "o_proj.weight", hidden, c.q_width()));
    sw.inv_freq = RopeInvFreq(c);
  }
  return w;
}

absl::StatusOr<MoeWeights> LoadExperts(const Checkpoint& checkpoint, int layer,
                                       const std::vector<int>& expert_ids) {
  const ModelConfig& c = checkpoint.config();
  MoeWeights moe;
  moe.layer = layer;
  moe.experts.resize(c.num_local_experts);
  std::vector<int> ids = expert_ids;
  if (ids.empty()) {
    for (int e = 0; e < c.num_local_experts; ++e) ids.push_back(e);
  }
  for (int e : ids) {
    if (e < 0 || e >= c.num_local_experts) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", layer, ": expert id ", e,
                                                     " out of range [0, ", c.num_local_experts, ")"));
    }
    const std::string p = absl::StrCat(LayerPrefix(layer), "block_sparse_moe.experts.", e, ".");
    ExpertWeights& ew = moe.experts[e];
    MMX_ASSIGN_OR_RETURN(ew.w1, checkpoint.Matrix(p + "w1.weight", c.intermediate_size, c.hidden_size));
    MMX_ASSIGN_OR_RETURN(ew.w3, checkpoint.Matrix(p + "w3.weight", c.intermediate_size, c.hidden_size));
    MMX_ASSIGN_OR_RETURN(ew.w2, checkpoint.Matrix(p + "w2.weight", c.hidden_size, c.intermediate_size));
  }
  return moe;
}

absl::StatusOr<kernels::WeightView> LoadEmbedding(const Checkpoint& checkpoint) {
  const ModelConfig& c = checkpoint.config();
  return checkpoint.Matrix("model.embed_tokens.weight", c.vocab_size, c.hidden_size);
}

absl::StatusOr<TailWeights> LoadTail(const Checkpoint& checkpoint) {
  const ModelConfig& c = checkpoint.config();
  TailWeights t;
  MMX_ASSIGN_OR_RETURN(t.final_norm, checkpoint.VectorF32("model.norm.weight", c.hidden_size));
  MMX_ASSIGN_OR_RETURN(t.lm_head, checkpoint.Matrix("lm_head.weight", c.vocab_size, c.hidden_size));
  return t;
}

}  // namespace mmx::model
