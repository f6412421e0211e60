// ModelConfig: a MiniMaxText01ForCausalLM config.json, parsed and validated once, then const.
// Every key of MODEL.md §1 is read; keys that change the math to something mmx does not
// implement are refused with a message naming the key.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mmx::model {

enum class AttentionKind : uint8_t { kLightning = 0, kSoftmax = 1 };

struct ModelConfig {
  std::string architecture;  // "MiniMaxText01ForCausalLM"
  std::string model_type;
  int64_t hidden_size = 0;             // H
  int num_hidden_layers = 0;           // L
  int num_attention_heads = 0;         // N, both attention kinds
  int num_key_value_heads = 0;         // softmax layers only
  int head_dim = 0;                    // D (hidden_size / N when absent)
  int rotary_dim = 0;                  // head_dim when absent
  double rope_theta = 10000000.0;
  int64_t max_position_embeddings = 0;
  int64_t intermediate_size = 0;       // F
  int num_local_experts = 0;           // E
  int num_experts_per_tok = 0;         // K
  int64_t vocab_size = 0;              // V
  std::vector<AttentionKind> attn_type_list;  // [L]
  double linear_attn_alpha = 1.0, linear_attn_beta = 1.0;
  double full_attn_alpha = 1.0, full_attn_beta = 1.0;
  double mlp_alpha = 1.0, mlp_beta = 1.0;
  bool postnorm = true;
  double rms_norm_eps = 1e-5;
  bool tie_word_embeddings = false;
  int lightning_block_size = 256;      // optional "block" key (vLLM); the original's BLOCK = 256
  std::vector<int64_t> eos_token_ids;  // from config.json when set; see generation defaults
  std::optional<int64_t> bos_token_id;  // null in the released config

  // Parses config.json text. `source` names the file in error messages. InvalidArgument, naming
  // the key and what to change, for malformed JSON (with the parse position), a missing required
  // key, a value of the wrong JSON type or out of range, or a variant mmx does not implement
  // (another architecture, a shared expert, sliding window, tied embeddings, an activation
  // other than silu).
  static absl::StatusOr<ModelConfig> FromJson(const std::string& json_text,
                                              const std::string& source = "config.json");
  // Reads and parses DIR/config.json, or a path to a .json file. NotFound if it is missing;
  // otherwise as FromJson.
  static absl::StatusOr<ModelConfig> FromFile(const std::string& path);

  // Serialises back to a config.json in the official layout (used by mmx-mkmodel): the keys of
  // the released config.json, training-only keys at their released values.
  // FromJson(ToJson()) gives back an equal config.
  std::string ToJson() const;

  bool operator==(const ModelConfig&) const = default;

  AttentionKind attention_kind(int layer) const { return attn_type_list[layer]; }
  bool is_softmax(int layer) const { return attn_type_list[layer] == AttentionKind::kSoftmax; }
  int64_t q_width() const { return int64_t{num_attention_heads} * head_dim; }    // N*D
  int64_t kv_width() const { return int64_t{num_key_value_heads} * head_dim; }  // Nkv*D
};

// The ids generation stops on when none are given: config.json's eos_token_id if set, else
// MiniMax-Text-01's <end_of_sentence> (200020) when the vocabulary has it (MODEL.md §8), else none.
std::vector<int64_t> DefaultEosIds(const ModelConfig& config);

}  // namespace mmx::model
