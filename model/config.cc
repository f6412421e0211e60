// ModelConfig <-> config.json. Every key of MODEL.md §1 is read here and nowhere else; what the
// engine does not implement is refused with a message that names the key and the value it needs.
#include "model/config.h"

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace mmx::model {
namespace {

using Json = nlohmann::json;

constexpr const char* kArchitecture = "MiniMaxText01ForCausalLM";
constexpr const char* kDefaultModelType = "minimax_text_01";
// Only sizes the original's RoPE cache (there is no position table); MiniMax-Text-01's value.
constexpr int64_t kDefaultMaxPositions = 10240000;
constexpr int64_t kMaxInt = INT32_MAX;

// A short rendering of a JSON value for error messages.
std::string Show(const Json& value) {
  std::string text = value.dump();
  if (text.size() > 60) text = text.substr(0, 57) + "...";
  return text;
}

// Typed, range-checked access to the keys of one config.json object. Absent and null are the
// same for optional keys (HF writes `"head_dim": null` for "use the default").
class Reader {
 public:
  Reader(const Json& root, const std::string& source) : root_(root), source_(source) {}

  absl::Status Error(const std::string& key, const std::string& what) const {
    return absl::InvalidArgumentError(absl::StrCat(source_, ": '", key, "' ", what));
  }

  // nullptr when the key is absent or null.
  const Json* Find(const std::string& key) const {
    auto it = root_.find(key);
    if (it == root_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  absl::StatusOr<const Json*> Require(const std::string& key) const {
    const Json* value = Find(key);
    if (value == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          source_, ": missing required key '", key,
          root_.contains(key) ? "' (it is null)" : "'", "; MODEL.md §1 lists the keys mmx reads"));
    }
    return value;
  }

  absl::StatusOr<int64_t> AsInt(const std::string& key, const Json& value, int64_t min,
                                int64_t max) const {
    if (!value.is_number_integer()) return Error(key, "must be an integer, got " + Show(value));
    if (value.is_number_unsigned() && value.get<uint64_t>() > static_cast<uint64_t>(max)) {
      return Error(key, absl::StrCat("must be at most ", max, ", got ", Show(value)));
    }
    const int64_t v = value.get<int64_t>();
    if (v < min) return Error(key, absl::StrCat("must be at least ", min, ", got ", v));
    if (v > max) return Error(key, absl::StrCat("must be at most ", max, ", got ", v));
    return v;
  }

  absl::StatusOr<int64_t> Int(const std::string& key, int64_t min = 1, int64_t max = kMaxInt) const {
    MMX_ASSIGN_OR_RETURN(const Json* value, Require(key));
    return AsInt(key, *value, min, max);
  }
  absl::StatusOr<int64_t> IntOr(const std::string& key, int64_t fallback, int64_t min = 1,
                                int64_t max = kMaxInt) const {
    const Json* value = Find(key);
    if (value == nullptr) return fallback;
    return AsInt(key, *value, min, max);
  }

  absl::StatusOr<double> AsNumber(const std::string& key, const Json& value) const {
    if (!value.is_number()) return Error(key, "must be a number, got " + Show(value));
    return value.get<double>();
  }
  absl::StatusOr<double> Number(const std::string& key) const {
    MMX_ASSIGN_OR_RETURN(const Json* value, Require(key));
    return AsNumber(key, *value);
  }
  absl::StatusOr<double> NumberOr(const std::string& key, double fallback) const {
    const Json* value = Find(key);
    if (value == nullptr) return fallback;
    return AsNumber(key, *value);
  }

  absl::StatusOr<bool> AsBool(const std::string& key, const Json& value) const {
    if (!value.is_boolean()) return Error(key, "must be true or false, got " + Show(value));
    return value.get<bool>();
  }
  absl::StatusOr<bool> Bool(const std::string& key) const {
    MMX_ASSIGN_OR_RETURN(const Json* value, Require(key));
    return AsBool(key, *value);
  }
  absl::StatusOr<bool> BoolOr(const std::string& key, bool fallback) const {
    const Json* value = Find(key);
    if (value == nullptr) return fallback;
    return AsBool(key, *value);
  }

  absl::StatusOr<std::string> StringOr(const std::string& key, const std::string& fallback) const {
    const Json* value = Find(key);
    if (value == nullptr) return fallback;
    if (!value->is_string()) return Error(key, "must be a string, got " + Show(*value));
    return value->get<std::string>();
  }

 private:
  const Json& root_;
  const std::string& source_;
};

absl::StatusOr<std::string> ReadArchitecture(const Reader& reader) {
  MMX_ASSIGN_OR_RETURN(const Json* value, reader.Require("architectures"));
  if (!value->is_array()) {
    return reader.Error("architectures", "must be a list of strings, got " + Show(*value));
  }
  std::vector<std::string> names;
  for (const Json& name : *value) {
    if (!name.is_string()) {
      return reader.Error("architectures", "must be a list of strings, got " + Show(*value));
    }
    names.push_back(name.get<std::string>());
    if (names.back() == kArchitecture) return names.back();
  }
  return reader.Error(
      "architectures",
      absl::StrCat("is [", absl::StrJoin(names, ", "), "]; mmx supports only [\"", kArchitecture,
                   "\"] (the original MiniMax-Text-01 names, MODEL.md §6)"));
}

absl::StatusOr<std::vector<AttentionKind>> ReadAttnTypes(const Reader& reader, int num_layers) {
  MMX_ASSIGN_OR_RETURN(const Json* value, reader.Require("attn_type_list"));
  if (!value->is_array()) {
    return reader.Error("attn_type_list", "must be a list of 0/1, got " + Show(*value));
  }
  if (static_cast<int64_t>(value->size()) != num_layers) {
    return reader.Error("attn_type_list",
                        absl::StrCat("has ", value->size(), " entries but num_hidden_layers is ",
                                     num_layers, "; it needs one entry per layer"));
  }
  std::vector<AttentionKind> kinds;
  for (size_t l = 0; l < value->size(); ++l) {
    const Json& entry = (*value)[l];
    if (!entry.is_number_integer() || (entry.get<int64_t>() != 0 && entry.get<int64_t>() != 1)) {
      return reader.Error(absl::StrCat("attn_type_list[", l, "]"),
                          "is " + Show(entry) + "; each entry must be 0 (lightning) or 1 (softmax)");
    }
    kinds.push_back(entry.get<int64_t>() == 0 ? AttentionKind::kLightning : AttentionKind::kSoftmax);
  }
  return kinds;
}

// eos_token_id may be null, one id, or a list of ids (generation stops on any of them).
absl::StatusOr<std::vector<int64_t>> ReadEosIds(const Reader& reader) {
  const Json* value = reader.Find("eos_token_id");
  std::vector<int64_t> ids;
  if (value == nullptr) return ids;
  if (value->is_array()) {
    for (const Json& id : *value) {
      MMX_ASSIGN_OR_RETURN(int64_t v, reader.AsInt("eos_token_id", id, 0, INT64_MAX));
      ids.push_back(v);
    }
    return ids;
  }
  if (!value->is_number_integer()) {
    return reader.Error("eos_token_id", "must be null, an id or a list of ids, got " + Show(*value));
  }
  MMX_ASSIGN_OR_RETURN(int64_t v, reader.AsInt("eos_token_id", *value, 0, INT64_MAX));
  ids.push_back(v);
  return ids;
}

// Reads the size keys and the derived head_dim / rotary_dim, and checks how they fit together.
absl::Status ReadShape(const Reader& r, ModelConfig& c) {
  MMX_ASSIGN_OR_RETURN(c.hidden_size, r.Int("hidden_size"));
  MMX_ASSIGN_OR_RETURN(int64_t layers, r.Int("num_hidden_layers"));
  MMX_ASSIGN_OR_RETURN(int64_t heads, r.Int("num_attention_heads"));
  MMX_ASSIGN_OR_RETURN(int64_t kv_heads, r.Int("num_key_value_heads"));
  c.num_hidden_layers = static_cast<int>(layers);
  c.num_attention_heads = static_cast<int>(heads);
  c.num_key_value_heads = static_cast<int>(kv_heads);
  if (heads % kv_heads != 0) {
    return r.Error("num_key_value_heads",
                   absl::StrCat("is ", kv_heads, " but num_attention_heads ", heads,
                                " is not a multiple of it; GQA needs whole groups of query heads"));
  }

  if (r.Find("head_dim") == nullptr && c.hidden_size % heads != 0) {
    return r.Error("head_dim", absl::StrCat("is absent and hidden_size ", c.hidden_size,
                                            " is not divisible by num_attention_heads ", heads,
                                            "; set head_dim explicitly"));
  }
  MMX_ASSIGN_OR_RETURN(int64_t head_dim, r.IntOr("head_dim", c.hidden_size / heads));
  c.head_dim = static_cast<int>(head_dim);
  MMX_ASSIGN_OR_RETURN(int64_t rotary_dim, r.IntOr("rotary_dim", head_dim));
  c.rotary_dim = static_cast<int>(rotary_dim);
  if (rotary_dim % 2 != 0) {
    return r.Error("rotary_dim", absl::StrCat("is ", rotary_dim,
                                              "; it must be even (RoPE rotates the pairs "
                                              "(i, i + rotary_dim/2))"));
  }
  if (rotary_dim > head_dim) {
    return r.Error("rotary_dim", absl::StrCat("is ", rotary_dim, " but head_dim is only ",
                                              head_dim, "; it must be at most head_dim"));
  }

  MMX_ASSIGN_OR_RETURN(c.intermediate_size, r.Int("intermediate_size"));
  MMX_ASSIGN_OR_RETURN(int64_t experts, r.Int("num_local_experts"));
  c.num_local_experts = static_cast<int>(experts);
  MMX_ASSIGN_OR_RETURN(int64_t top_k, r.Int("num_experts_per_tok"));
  if (top_k > experts) {
    return r.Error("num_experts_per_tok",
                   absl::StrCat("is ", top_k, " but num_local_experts is ", experts,
                                "; top-k must be between 1 and the number of experts"));
  }
  c.num_experts_per_tok = static_cast<int>(top_k);
  MMX_ASSIGN_OR_RETURN(c.vocab_size, r.Int("vocab_size"));
  MMX_ASSIGN_OR_RETURN(c.max_position_embeddings,
                       r.IntOr("max_position_embeddings", kDefaultMaxPositions, 1, INT64_MAX));
  MMX_ASSIGN_OR_RETURN(c.attn_type_list, ReadAttnTypes(r, c.num_hidden_layers));
  MMX_ASSIGN_OR_RETURN(int64_t block, r.IntOr("block", 256));
  c.lightning_block_size = static_cast<int>(block);
  return absl::OkStatus();
}

// Residual scales, norms, RoPE: the keys that change the numbers.
absl::Status ReadMath(const Reader& r, ModelConfig& c) {
  MMX_ASSIGN_OR_RETURN(c.linear_attn_alpha, r.Number("layernorm_linear_attention_alpha"));
  MMX_ASSIGN_OR_RETURN(c.linear_attn_beta, r.Number("layernorm_linear_attention_beta"));
  MMX_ASSIGN_OR_RETURN(c.full_attn_alpha, r.Number("layernorm_full_attention_alpha"));
  MMX_ASSIGN_OR_RETURN(c.full_attn_beta, r.Number("layernorm_full_attention_beta"));
  MMX_ASSIGN_OR_RETURN(c.mlp_alpha, r.Number("layernorm_mlp_alpha"));
  MMX_ASSIGN_OR_RETURN(c.mlp_beta, r.Number("layernorm_mlp_beta"));
  // Required although HF's config class has defaults: its default (postnorm false, alpha 1)
  // is a different model, and a config that omits them is more likely hand-made than meant.
  MMX_ASSIGN_OR_RETURN(c.postnorm, r.Bool("postnorm"));
  MMX_ASSIGN_OR_RETURN(c.rms_norm_eps, r.Number("rms_norm_eps"));
  if (!(c.rms_norm_eps > 0)) {
    return r.Error("rms_norm_eps", absl::StrCat("must be positive, got ", c.rms_norm_eps));
  }
  MMX_ASSIGN_OR_RETURN(c.rope_theta, r.Number("rope_theta"));
  if (!(c.rope_theta > 0)) {
    return r.Error("rope_theta", absl::StrCat("must be positive, got ", c.rope_theta));
  }
  return absl::OkStatus();
}

// Keys whose non-default values select code mmx does not have.
absl::Status ReadRefusedVariants(const Reader& r, ModelConfig& c) {
  MMX_ASSIGN_OR_RETURN(std::string act, r.StringOr("hidden_act", "silu"));
  if (act != "silu") {
    return r.Error("hidden_act", absl::StrCat("is \"", act,
                                              "\"; mmx implements only \"silu\" (the expert and "
                                              "lightning q/k/v activation)"));
  }
  MMX_ASSIGN_OR_RETURN(int64_t shared, r.IntOr("shared_intermediate_size", 0, INT64_MIN));
  if (shared != 0) {
    return r.Error("shared_intermediate_size",
                   absl::StrCat("is ", shared,
                                "; mmx does not implement the shared expert (MODEL.md §2), "
                                "it needs 0"));
  }
  MMX_RETURN_IF_ERROR(r.StringOr("shared_moe_mode", "sigmoid").status());  // inert when no shared expert
  MMX_ASSIGN_OR_RETURN(c.tie_word_embeddings, r.BoolOr("tie_word_embeddings", false));
  if (c.tie_word_embeddings) {
    return r.Error("tie_word_embeddings",
                   "is true; mmx reads a separate lm_head.weight and does not implement tied "
                   "embeddings, it needs false");
  }
  if (const Json* window = r.Find("sliding_window"); window != nullptr) {
    return r.Error("sliding_window", "is " + Show(*window) +
                                         "; mmx implements full causal softmax attention only, "
                                         "it needs null");
  }
  return absl::OkStatus();
}

// Training-only and bookkeeping keys: not used, but a wrong type still means a broken file.
absl::Status CheckInertKeys(const Reader& r) {
  for (const char* key : {"attention_dropout", "router_jitter_noise", "router_aux_loss_coef",
                          "initializer_range"}) {
    MMX_RETURN_IF_ERROR(r.NumberOr(key, 0).status());
  }
  for (const char* key : {"output_router_logits", "use_cache"}) {
    MMX_RETURN_IF_ERROR(r.BoolOr(key, false).status());
  }
  MMX_RETURN_IF_ERROR(r.StringOr("transformers_version", "").status());
  return absl::OkStatus();
}

// rope_theta is an integer in the released file (10000000); keep it one when it is.
Json NumberJson(double v) {
  if (std::floor(v) == v && std::fabs(v) < 9007199254740992.0) return static_cast<int64_t>(v);
  return v;
}

}  // namespace

absl::StatusOr<ModelConfig> ModelConfig::FromJson(const std::string& json_text,
                                                  const std::string& source) {
  Json root;
  try {
    root = Json::parse(json_text);
  } catch (const Json::parse_error& e) {
    // e.what() carries "parse error at line L, column C: ...".
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": malformed JSON (byte ", e.byte, "): ", e.what()));
  } catch (const Json::exception& e) {  // out_of_range: a number beyond double, e.g. 1E400
    return absl::InvalidArgumentError(absl::StrCat(source, ": malformed JSON: ", e.what()));
  }
  if (!root.is_object()) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": expected a JSON object, got ", Show(root)));
  }
  const Reader reader(root, source);
  ModelConfig c;
  MMX_ASSIGN_OR_RETURN(c.architecture, ReadArchitecture(reader));
  MMX_ASSIGN_OR_RETURN(c.model_type, reader.StringOr("model_type", kDefaultModelType));
  MMX_RETURN_IF_ERROR(ReadShape(reader, c));
  MMX_RETURN_IF_ERROR(ReadMath(reader, c));
  MMX_RETURN_IF_ERROR(ReadRefusedVariants(reader, c));
  MMX_RETURN_IF_ERROR(CheckInertKeys(reader));
  MMX_ASSIGN_OR_RETURN(c.eos_token_ids, ReadEosIds(reader));
  if (const Json* bos = reader.Find("bos_token_id"); bos != nullptr) {
    MMX_ASSIGN_OR_RETURN(c.bos_token_id, reader.AsInt("bos_token_id", *bos, 0, INT64_MAX));
  }
  return c;
}

absl::StatusOr<ModelConfig> ModelConfig::FromFile(const std::string& path) {
  std::error_code ec;
  const std::string file = std::filesystem::is_directory(path, ec)
                               ? (std::filesystem::path(path) / "config.json").string()
                               : path;
  if (!std::filesystem::exists(file, ec)) {
    return absl::NotFoundError(
        absl::StrCat(file, ": no such file (a checkpoint directory needs its config.json)"));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", file));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(file, ": read error"));
  return FromJson(text.str(), file);
}

std::string ModelConfig::ToJson() const {
  Json j = Json::object();
  j["architectures"] = Json::array({architecture});
  j["attention_dropout"] = 0.0;
  Json types = Json::array();
  for (AttentionKind kind : attn_type_list) types.push_back(static_cast<int>(kind));
  j["attn_type_list"] = types;
  j["auto_map"] = {
      {"AutoConfig", "configuration_minimax_text_01.MiniMaxText01Config"},
      {"AutoModelForCausalLM", "modeling_minimax_text_01.MiniMaxText01ForCausalLM"}};
  if (lightning_block_size != 256) j["block"] = lightning_block_size;
  j["bos_token_id"] = bos_token_id.has_value() ? Json(*bos_token_id) : Json(nullptr);
  if (eos_token_ids.empty()) {
    j["eos_token_id"] = nullptr;
  } else if (eos_token_ids.size() == 1) {
    j["eos_token_id"] = eos_token_ids[0];
  } else {
    j["eos_token_id"] = eos_token_ids;
  }
  j["head_dim"] = head_dim;
  j["hidden_act"] = "silu";
  j["hidden_size"] = hidden_size;
  j["initializer_range"] = 0.02;
  j["intermediate_size"] = intermediate_size;
  j["layernorm_full_attention_alpha"] = full_attn_alpha;
  j["layernorm_full_attention_beta"] = full_attn_beta;
  j["layernorm_linear_attention_alpha"] = linear_attn_alpha;
  j["layernorm_linear_attention_beta"] = linear_attn_beta;
  j["layernorm_mlp_alpha"] = mlp_alpha;
  j["layernorm_mlp_beta"] = mlp_beta;
  j["max_position_embeddings"] = max_position_embeddings;
  j["model_type"] = model_type;
  j["num_attention_heads"] = num_attention_heads;
  j["num_experts_per_tok"] = num_experts_per_tok;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_key_value_heads"] = num_key_value_heads;
  j["num_local_experts"] = num_local_experts;
  j["output_router_logits"] = false;
  j["postnorm"] = postnorm;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = NumberJson(rope_theta);
  j["rotary_dim"] = rotary_dim;
  j["router_aux_loss_coef"] = 0.001;
  j["router_jitter_noise"] = 0.0;
  j["shared_intermediate_size"] = 0;
  j["shared_moe_mode"] = "sigmoid";
  j["sliding_window"] = nullptr;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["transformers_version"] = "4.45.2";
  j["use_cache"] = true;
  j["vocab_size"] = vocab_size;
  return j.dump(2) + "\n";
}

std::vector<int64_t> DefaultEosIds(const ModelConfig& config) {
  constexpr int64_t kEndOfSentenceId = 200020;
  if (!config.eos_token_ids.empty()) return config.eos_token_ids;
  if (config.vocab_size > kEndOfSentenceId) return {kEndOfSentenceId};
  return {};
}

}  // namespace mmx::model
