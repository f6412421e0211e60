// Checkpoint: the directory layout (config.json, the index, the shards) and the tensor names
// and shapes of MODEL.md §6. Only headers are read here; tensor bytes stay in the mmaps until
// the caller touches them.
#include "model/checkpoint.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/bf16.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace mmx::model {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr const char* kIndexName = "model.safetensors.index.json";
constexpr const char* kSingleName = "model.safetensors";

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

std::string Join(const std::string& dir, const std::string& name) {
  return (fs::path(dir) / name).string();
}

// Tensors some exporters save although they are computed at load time (vLLM skips them too).
bool IsIgnoredTensor(const std::string& name) {
  return absl::EndsWith(name, "rotary_emb.inv_freq");
}

absl::StatusOr<std::string> ReadTextFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::ErrnoToStatus(errno, absl::StrCat("cannot read ", path));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return text.str();
}

// Reads the index's weight_map: tensor name -> shard file name (a bare name inside the dir).
absl::StatusOr<std::map<std::string, std::string>> ReadWeightMap(const std::string& path) {
  MMX_ASSIGN_OR_RETURN(std::string text, ReadTextFile(path));
  Json index;
  try {
    index = Json::parse(text);
  } catch (const Json::exception& e) {  // parse_error, or out_of_range (1E400)
    return absl::DataLossError(
        absl::StrCat(path, ": malformed JSON (", e.what(), "); the index is corrupt"));
  }
  auto it = index.is_object() ? index.find("weight_map") : index.end();
  if (it == index.end() || !it->is_object()) {
    return absl::DataLossError(
        absl::StrCat(path, ": no \"weight_map\" object (tensor name -> shard file)"));
  }
  std::map<std::string, std::string> weight_map;
  for (const auto& [name, shard] : it->items()) {
    if (!shard.is_string()) {
      return absl::DataLossError(absl::StrCat(path, ": weight_map entry '", name,
                                              "' is not a shard file name"));
    }
    const std::string file = shard.get<std::string>();
    // The index is untrusted: a shard must be a file in the checkpoint directory itself.
    if (file.empty() || file == "." || file == ".." || file.find('/') != std::string::npos) {
      return absl::DataLossError(absl::StrCat(path, ": weight_map maps '", name, "' to \"", file,
                                              "\", which is not a file name in this directory"));
    }
    weight_map.emplace(name, file);
  }
  return weight_map;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors(const ModelConfig& c) {
  const int64_t h = c.hidden_size, f = c.intermediate_size, v = c.vocab_size;
  const int64_t q = c.q_width(), kv = c.kv_width();
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  // Module (state_dict) order of the original code, which is how shards are cut.
  out.push_back({"model.embed_tokens.weight", {v, h}});
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::string layer = absl::StrCat("model.layers.", l, ".");
    const std::string attn = layer + "self_attn.";
    if (c.is_softmax(l)) {
      out.push_back({attn + "q_proj.weight", {q, h}});
      out.push_back({attn + "k_proj.weight", {kv, h}});
      out.push_back({attn + "v_proj.weight", {kv, h}});
      out.push_back({attn + "o_proj.weight", {h, q}});
    } else {
      out.push_back({attn + "out_proj.weight", {h, q}});
      out.push_back({attn + "norm.weight", {q}});
      out.push_back({attn + "qkv_proj.weight", {3 * q, h}});
      out.push_back({attn + "output_gate.weight", {q, h}});
    }
    const std::string moe = layer + "block_sparse_moe.";
    out.push_back({moe + "gate.weight", {c.num_local_experts, h}});
    for (int e = 0; e < c.num_local_experts; ++e) {
      const std::string expert = absl::StrCat(moe, "experts.", e, ".");
      out.push_back({expert + "w1.weight", {f, h}});
      out.push_back({expert + "w2.weight", {h, f}});
      out.push_back({expert + "w3.weight", {f, h}});
    }
    out.push_back({layer + "input_layernorm.weight", {h}});
    out.push_back({layer + "post_attention_layernorm.weight", {h}});
  }
  out.push_back({"model.norm.weight", {h}});
  out.push_back({"lm_head.weight", {v, h}});
  return out;
}

absl::StatusOr<std::unique_ptr<Checkpoint>> Checkpoint::Open(const std::string& dir) {
  std::unique_ptr<Checkpoint> ckpt(new Checkpoint());
  ckpt->dir_ = dir;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(dir, ": no such checkpoint directory"));
  }
  MMX_ASSIGN_OR_RETURN(ckpt->config_, ModelConfig::FromFile(Join(dir, "config.json")));

  const std::string index_path = Join(dir, kIndexName);
  if (fs::exists(index_path, ec)) {
    MMX_ASSIGN_OR_RETURN(auto weight_map, ReadWeightMap(index_path));
    // Open each distinct shard once, remembering one tensor it should hold for the error.
    std::map<std::string, const SafetensorsFile*> shards;
    for (const auto& [name, shard] : weight_map) {
      if (shards.count(shard) > 0) continue;
      absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
          SafetensorsFile::Open(Join(dir, shard));
      if (absl::IsNotFound(file.status())) {
        return absl::NotFoundError(absl::StrCat(Join(dir, shard), ": shard is missing; ",
                                                kIndexName, " says it holds '", name,
                                                "' among others"));
      }
      MMX_RETURN_IF_ERROR(file.status());
      shards[shard] = file->get();
      ckpt->files_.push_back(*std::move(file));
    }
    for (const auto& [name, shard] : weight_map) {
      const SafetensorsFile* file = shards[shard];
      if (file->Find(name) == nullptr) {
        return absl::DataLossError(absl::StrCat(
            file->path(), ": has no tensor '", name, "' although ", kIndexName,
            " maps it to this shard; the shard or the index is stale or corrupt"));
      }
      ckpt->where_[name] = file;
    }
    // A tensor the index does not place in this shard is a second, unreachable copy or a
    // stale leftover: either way the two files disagree.
    for (const auto& file : ckpt->files_) {
      for (const auto& [name, info] : file->tensors()) {
        auto placed = ckpt->where_.find(name);
        if (placed == ckpt->where_.end() || placed->second != file.get()) {
          return absl::DataLossError(absl::StrCat(
              file->path(), ": holds tensor '", name, "' but ", kIndexName,
              (weight_map.count(name) ? " maps it to another shard" : " does not list it"),
              "; the shard or the index is stale or corrupt"));
        }
      }
    }
    return ckpt;
  }

  // No index: one file, model.safetensors or the directory's only *.safetensors.
  std::string single = Join(dir, kSingleName);
  if (!fs::exists(single, ec)) {
    std::vector<std::string> found;
    for (const auto& entry : fs::directory_iterator(dir, ec)) {
      if (entry.path().extension() == ".safetensors") found.push_back(entry.path().string());
    }
    if (found.size() != 1) {
      return absl::NotFoundError(absl::StrCat(
          dir, ": no ", kIndexName, found.empty() ? " and no .safetensors file"
                                                  : absl::StrCat(" to say which of the ",
                                                                 found.size(),
                                                                 " .safetensors files holds "
                                                                 "which tensor")));
    }
    single = found[0];
  }
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsFile> file, SafetensorsFile::Open(single));
  for (const auto& [name, info] : file->tensors()) ckpt->where_[name] = file.get();
  ckpt->files_.push_back(std::move(file));
  return ckpt;
}

bool Checkpoint::Has(const std::string& name) const { return where_.count(name) > 0; }

const TensorInfo* Checkpoint::Find(const std::string& name) const {
  auto it = where_.find(name);
  return it == where_.end() ? nullptr : it->second->Find(name);
}

std::vector<std::string> Checkpoint::TensorNames() const {
  std::vector<std::string> names;
  names.reserve(where_.size());
  for (const auto& [name, file] : where_) names.push_back(name);
  return names;
}

std::vector<std::string> Checkpoint::TouchedTensors() const {
  absl::MutexLock lock(&touched_mu_);
  return std::vector<std::string>(touched_.begin(), touched_.end());
}

absl::StatusOr<TensorInfo> Checkpoint::Get(const std::string& name,
                                           const std::vector<int64_t>& shape) const {
  auto it = where_.find(name);
  if (it == where_.end()) {
    return absl::NotFoundError(absl::StrCat(dir_, ": checkpoint has no tensor '", name, "'"));
  }
  {
    absl::MutexLock lock(&touched_mu_);
    touched_.insert(name);
  }
  const TensorInfo* info = it->second->Find(name);
  if (info->shape != shape) {
    return absl::InvalidArgumentError(absl::StrCat(it->second->path(), ": tensor '", name,
                                                   "' has shape ", ShapeString(info->shape),
                                                   ", config.json expects ", ShapeString(shape)));
  }
  return *info;
}

absl::StatusOr<kernels::WeightView> Checkpoint::Matrix(const std::string& name, int64_t rows,
                                                       int64_t cols) const {
  MMX_ASSIGN_OR_RETURN(TensorInfo info, Get(name, {rows, cols}));
  return kernels::WeightView{info.data, info.dtype, rows, cols};
}

absl::StatusOr<std::vector<float>> Checkpoint::VectorF32(const std::string& name,
                                                        int64_t n) const {
  MMX_ASSIGN_OR_RETURN(TensorInfo info, Get(name, {n}));
  std::vector<float> out(static_cast<size_t>(n));
  // memcpy per element: offsets in a safetensors file need not be aligned to the dtype.
  const auto* bytes = static_cast<const uint8_t*>(info.data);
  for (int64_t i = 0; i < n; ++i) {
    if (info.dtype == DType::kF32) {
      std::memcpy(&out[i], bytes + 4 * i, 4);
    } else {
      uint16_t half;
      std::memcpy(&half, bytes + 2 * i, 2);
      out[i] = info.dtype == DType::kBF16 ? Bf16ToFloat(half) : F16ToFloat(half);
    }
  }
  return out;
}

absl::Status Checkpoint::ValidateAgainstConfig() const {
  // Collect every problem so one message says how much is wrong; return the first in full.
  std::vector<absl::Status> problems;
  std::set<std::string> expected_names;
  for (const auto& [name, shape] : ExpectedTensors(config_)) {
    expected_names.insert(name);
    auto it = where_.find(name);
    if (it == where_.end()) {
      problems.push_back(absl::NotFoundError(
          absl::StrCat(dir_, ": tensor '", name, "' ", ShapeString(shape),
                       " is missing; config.json implies it (MODEL.md §6)")));
      continue;
    }
    absl::Status shape_ok = Get(name, shape).status();
    if (!shape_ok.ok()) problems.push_back(shape_ok);
  }
  for (const auto& [name, file] : where_) {
    if (expected_names.count(name) > 0 || IsIgnoredTensor(name)) continue;
    problems.push_back(absl::InvalidArgumentError(absl::StrCat(
        file->path(), ": tensor '", name,
        "' is not one config.json implies (MODEL.md §6); mmx does not know what to do with it")));
  }
  if (problems.empty()) return absl::OkStatus();
  if (problems.size() == 1) return problems[0];
  return absl::Status(problems[0].code(), absl::StrCat(problems[0].message(), " (and ",
                                                       problems.size() - 1, " more problems)"));
}

}  // namespace mmx::model
