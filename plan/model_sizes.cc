#include "plan/model_sizes.h"

#include <string>

#include "base/status_macros.h"
#include "model/checkpoint.h"

namespace mmx::plan {
namespace {

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

int64_t Product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

// "model.layers.17.xyz" -> 17; -1 when the name is not a layer tensor.
int LayerOf(const std::string& name) {
  static const std::string kPrefix = "model.layers.";
  if (name.compare(0, kPrefix.size(), kPrefix) != 0) return -1;
  return std::stoi(name.substr(kPrefix.size()));
}

}  // namespace

int64_t ModelSizes::SumOver(const std::vector<int64_t>& per_layer, bool softmax_layers) const {
  int64_t sum = 0;
  for (int l = 0; l < num_layers; ++l) {
    if (is_softmax[l] == softmax_layers) sum += per_layer[l];
  }
  return sum;
}

int ModelSizes::num_softmax_layers() const {
  int n = 0;
  for (bool s : is_softmax) n += s ? 1 : 0;
  return n;
}

int64_t ModelSizes::ActiveParamsPerToken() const {
  int64_t n = int64_t{experts_per_token} * expert_params * num_layers + final_norm_params;
  for (int l = 0; l < num_layers; ++l) n += StageLayerParams(l);
  return n;
}

ModelSizes ComputeModelSizes(const model::ModelConfig& config) {
  ModelSizes s;
  s.num_layers = config.num_hidden_layers;
  s.num_experts = config.num_local_experts;
  s.experts_per_token = config.num_experts_per_tok;
  s.hidden = config.hidden_size;
  s.intermediate = config.intermediate_size;
  s.vocab = config.vocab_size;
  s.num_heads = config.num_attention_heads;
  s.head_dim = config.head_dim;
  s.num_kv_heads = config.num_key_value_heads;
  s.is_softmax.resize(s.num_layers);
  for (int l = 0; l < s.num_layers; ++l) s.is_softmax[l] = config.is_softmax(l);
  s.attention_params.assign(s.num_layers, 0);
  s.router_params.assign(s.num_layers, 0);
  s.norm_params.assign(s.num_layers, 0);

  int64_t expert_tensor_params = 0, expert_tensor_rows = 0;
  for (const auto& [name, shape] : model::ExpectedTensors(config)) {
    const int64_t n = Product(shape);
    s.total_params += n;
    const int layer = LayerOf(name);
    if (name == "model.embed_tokens.weight") {
      s.embedding_params += n;
    } else if (name == "lm_head.weight") {
      s.lm_head_params += n;
    } else if (name == "model.norm.weight") {
      s.final_norm_params += n;
    } else if (layer >= 0 && name.find(".self_attn.") != std::string::npos) {
      s.attention_params[layer] += n;
    } else if (layer >= 0 && EndsWith(name, ".block_sparse_moe.gate.weight")) {
      s.router_params[layer] += n;
    } else if (layer >= 0 && (EndsWith(name, "_layernorm.weight"))) {
      s.norm_params[layer] += n;
    } else if (layer >= 0 && name.find(".block_sparse_moe.experts.") != std::string::npos) {
      expert_tensor_params += n;
      expert_tensor_rows += shape[0];  // [out, in]: one scale per output channel
    } else {
      MMX_CHECK(false && "ExpectedTensors names a tensor ComputeModelSizes does not classify");
    }
  }
  const int64_t pairs = s.num_expert_pairs();
  MMX_CHECK(pairs > 0 && expert_tensor_params % pairs == 0 && expert_tensor_rows % pairs == 0);
  s.expert_params = expert_tensor_params / pairs;
  s.expert_output_channels = expert_tensor_rows / pairs;
  return s;
}

}  // namespace mmx::plan
