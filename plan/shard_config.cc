#include "plan/shard_config.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/state_bytes.h"
#include "yaml-cpp/yaml.h"

namespace mmx::plan {
namespace {

// Parse-time error with the YAML position, e.g. "cluster.yaml:7: workers[1].attention: ...".
absl::Status ParseError(const std::string& source, const YAML::Node& node, const std::string& what) {
  const YAML::Mark mark = node.Mark();
  if (mark.line >= 0) return absl::InvalidArgumentError(absl::StrCat(source, ":", mark.line + 1, ": ", what));
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

absl::Status CheckKeys(const std::string& source, const YAML::Node& node, const std::string& where,
                       const std::set<std::string>& allowed) {
  for (const auto& kv : node) {
    if (!kv.first.IsScalar()) return ParseError(source, kv.first, where + ": keys must be plain names");
    const std::string key = kv.first.as<std::string>();
    if (!allowed.count(key)) {
      return ParseError(source, kv.first,
                        absl::StrCat(where, ": unknown key '", key, "' (known: ",
                                     absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<LayerRange> ParseRange(const std::string& source, const YAML::Node& node,
                                      const std::string& where) {
  if (!node.IsSequence() || node.size() != 2) {
    return ParseError(source, node, absl::StrCat(where, ": expected a half-open range [begin, end]"));
  }
  LayerRange r;
  try {
    r.begin = node[0].as<int>();
    r.end = node[1].as<int>();
  } catch (const YAML::Exception&) {
    return ParseError(source, node, absl::StrCat(where, ": range bounds must be integers"));
  }
  if (r.begin < 0 || r.end <= r.begin) {
    return ParseError(source, node,
                      absl::StrCat(where, ": [", r.begin, ", ", r.end,
                                   ") is empty or negative; write [begin, end) with begin < end"));
  }
  return r;
}

absl::StatusOr<bool> ParseBool(const std::string& source, const YAML::Node& node, const std::string& where) {
  try {
    return node.as<bool>();
  } catch (const YAML::Exception&) {
    return ParseError(source, node, absl::StrCat(where, ": expected true or false"));
  }
}

absl::StatusOr<WorkerShard> ParseWorker(const std::string& source, const YAML::Node& node, int index) {
  const std::string where = absl::StrCat("workers[", index, "]");
  if (!node.IsMap()) return ParseError(source, node, where + ": expected a mapping");
  MMX_RETURN_IF_ERROR(CheckKeys(source, node, where,
                                {"name", "device", "group", "embedding", "lm_head", "attention", "experts"}));
  WorkerShard w;
  if (!node["name"] || !node["name"].IsScalar()) {
    return ParseError(source, node, where + ": missing 'name'");
  }
  w.name = node["name"].as<std::string>();
  const std::string named = absl::StrCat(where, " (", w.name, ")");
  if (node["device"]) w.device = node["device"].as<std::string>();
  if (const YAML::Node group = node["group"]) {
    if (!group.IsScalar() || group.as<std::string>().empty()) {
      return ParseError(source, group, named + ".group: expected a name");
    }
    w.group = group.as<std::string>();
  }
  if (node["embedding"]) {
    MMX_ASSIGN_OR_RETURN(w.embedding, ParseBool(source, node["embedding"], named + ".embedding"));
  }
  if (node["lm_head"]) {
    MMX_ASSIGN_OR_RETURN(w.lm_head, ParseBool(source, node["lm_head"], named + ".lm_head"));
  }
  if (node["attention"]) {
    MMX_ASSIGN_OR_RETURN(LayerRange r, ParseRange(source, node["attention"], named + ".attention"));
    w.attention = r;
  }
  if (const YAML::Node experts = node["experts"]) {
    if (!experts.IsSequence()) return ParseError(source, experts, named + ".experts: expected a list of blocks");
    for (size_t b = 0; b < experts.size(); ++b) {
      const YAML::Node block = experts[b];
      const std::string bwhere = absl::StrCat(named, ".experts[", b, "]");
      if (!block.IsMap()) return ParseError(source, block, bwhere + ": expected {layers: [a, b], ids: [...] | all}");
      MMX_RETURN_IF_ERROR(CheckKeys(source, block, bwhere, {"layers", "ids"}));
      if (!block["layers"] || !block["ids"]) {
        return ParseError(source, block, bwhere + ": needs both 'layers' and 'ids'");
      }
      ExpertBlock eb;
      MMX_ASSIGN_OR_RETURN(eb.layers, ParseRange(source, block["layers"], bwhere + ".layers"));
      const YAML::Node ids = block["ids"];
      if (ids.IsScalar() && ids.as<std::string>() == "all") {
        eb.all = true;
      } else if (ids.IsSequence()) {
        try {
          for (const auto& id : ids) eb.ids.push_back(id.as<int>());
        } catch (const YAML::Exception&) {
          return ParseError(source, ids, bwhere + ".ids: expert ids must be integers");
        }
      } else {
        return ParseError(source, ids, bwhere + ".ids: expected a list of expert ids or 'all'");
      }
      w.experts.push_back(std::move(eb));
    }
  }
  return w;
}

}  // namespace

bool ExpertBlock::Holds(int layer, int expert) const {
  if (!layers.Contains(layer)) return false;
  return all || std::find(ids.begin(), ids.end(), expert) != ids.end();
}

std::vector<int> WorkerShard::ExpertsOfLayer(int layer, int num_experts) const {
  std::set<int> held;
  for (const ExpertBlock& b : experts) {
    if (!b.layers.Contains(layer)) continue;
    if (b.all) {
      for (int e = 0; e < num_experts; ++e) held.insert(e);
    } else {
      held.insert(b.ids.begin(), b.ids.end());
    }
  }
  return {held.begin(), held.end()};
}

const WorkerShard* ShardConfig::Find(const std::string& name) const {
  for (const WorkerShard& w : workers) {
    if (w.name == name) return &w;
  }
  return nullptr;
}

namespace {

absl::StatusOr<ShardConfig> ParseRoot(const std::string& source, const YAML::Node& root) {
  if (!root.IsMap()) return absl::InvalidArgumentError(source + ": expected a mapping with 'model' and 'workers'");
  MMX_RETURN_IF_ERROR(CheckKeys(source, root, "top level", {"model", "expert_dtype", "serving", "workers"}));
  ShardConfig shard;
  if (!root["model"] || !root["model"].IsScalar()) {
    return absl::InvalidArgumentError(source + ": missing 'model' (the checkpoint directory)");
  }
  shard.model = root["model"].as<std::string>();
  if (root["expert_dtype"]) {
    shard.expert_dtype = root["expert_dtype"].as<std::string>();
    if (shard.expert_dtype != "bf16" && shard.expert_dtype != "int8") {
      return ParseError(source, root["expert_dtype"],
                        absl::StrCat("expert_dtype '", shard.expert_dtype, "' is not bf16 or int8"));
    }
  }
  if (const YAML::Node serving = root["serving"]) {
    if (!serving.IsMap()) return ParseError(source, serving, "serving: expected a mapping");
    MMX_RETURN_IF_ERROR(CheckKeys(source, serving, "serving", {"steps_in_flight", "kv_dtype", "wire_dtype"}));
    if (const YAML::Node n = serving["wire_dtype"]) {
      absl::StatusOr<DType> dtype = ParseWireDType(n.IsScalar() ? n.as<std::string>() : std::string("?"));
      if (!dtype.ok()) return ParseError(source, n, absl::StrCat("serving.", dtype.status().message()));
      shard.wire_dtype = *dtype;
    }
    if (const YAML::Node n = serving["kv_dtype"]) {
      absl::StatusOr<DType> dtype = model::ParseKvDType(n.IsScalar() ? n.as<std::string>() : std::string("?"));
      if (!dtype.ok()) return ParseError(source, n, absl::StrCat("serving.", dtype.status().message()));
      shard.kv_dtype = *dtype;
    }
    if (const YAML::Node n = serving["steps_in_flight"]) {
      int value = -1;
      try {
        value = n.as<int>();
      } catch (const YAML::Exception&) {
      }
      if (value < 0 || value > 64) {
        return ParseError(source, n, "serving.steps_in_flight: expected a whole number from 0 (automatic) to 64");
      }
      shard.steps_in_flight = value;
    }
  }
  const YAML::Node workers = root["workers"];
  if (!workers || !workers.IsSequence() || workers.size() == 0) {
    return absl::InvalidArgumentError(source + ": 'workers' must be a non-empty list");
  }
  for (size_t i = 0; i < workers.size(); ++i) {
    MMX_ASSIGN_OR_RETURN(WorkerShard w, ParseWorker(source, workers[i], static_cast<int>(i)));
    shard.workers.push_back(std::move(w));
  }
  return shard;
}

}  // namespace

absl::StatusOr<ShardConfig> ParseShardConfig(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
  try {
    return ParseRoot(source, root);
  } catch (const YAML::Exception& e) {
    // A value of a shape the checks did not anticipate (a map where a name goes) still becomes
    // one clear line.
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
}

absl::StatusOr<ShardConfig> LoadShardConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read shard config ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseShardConfig(text.str(), path);
}

std::vector<std::string> AttentionGroups(const ShardConfig& shard) {
  std::vector<std::string> groups;
  for (const WorkerShard& w : shard.workers) {
    if (w.experts_only()) continue;
    if (std::find(groups.begin(), groups.end(), w.group) == groups.end()) groups.push_back(w.group);
  }
  return groups;
}

absl::Status ValidateShardConfig(const ShardConfig& shard, const model::ModelConfig& config) {
  std::vector<std::string> problems;
  const int L = config.num_hidden_layers, E = config.num_local_experts;

  std::map<std::string, int> names;
  for (const WorkerShard& w : shard.workers) {
    if (w.name.empty()) problems.push_back("a worker has an empty name");
    if (++names[w.name] == 2) problems.push_back(absl::StrCat("worker name '", w.name, "' is used more than once"));
    const bool cuda = w.device.rfind("cuda:", 0) == 0 && w.device.size() > 5 &&
                      w.device.find_first_not_of("0123456789,", 5) == std::string::npos;
    if (w.device != "cpu" && !cuda) {
      problems.push_back(absl::StrCat("worker '", w.name, "': device '", w.device,
                                      "' is not cpu or cuda:N"));
    }
    if (!w.embedding && !w.lm_head && !w.attention && w.experts.empty()) {
      problems.push_back(absl::StrCat("worker '", w.name, "' has no role"));
    }
    for (const ExpertBlock& b : w.experts) {
      if (b.layers.end > L) {
        problems.push_back(absl::StrCat("worker '", w.name, "': expert block layers [", b.layers.begin, ", ",
                                        b.layers.end, ") go past the model's ", L, " layers"));
      }
      for (int id : b.ids) {
        if (id < 0 || id >= E) {
          problems.push_back(absl::StrCat("worker '", w.name, "': expert id ", id, " is outside [0, ", E, ")"));
        }
      }
    }
  }

  for (const WorkerShard& w : shard.workers) {
    if (!w.group.empty() && w.experts_only()) {
      problems.push_back(absl::StrCat("worker '", w.name, "': an expert-only worker has no group (group '", w.group,
                                      "'): experts serve every group"));
    }
  }
  const std::vector<std::string> groups = AttentionGroups(shard);
  for (const std::string& group : groups) {
    // With one unnamed group the messages are as they always were.
    const std::string in = groups.size() == 1 && group.empty() ? ""
                           : group.empty()                      ? std::string("the unnamed group: ")
                                                                : absl::StrCat("group '", group, "': ");
    auto of_group = [&](const WorkerShard& w) { return w.group == group && !w.experts_only(); };
    auto count_role = [&](bool WorkerShard::*role, const char* label) {
      std::vector<std::string> holders;
      for (const WorkerShard& w : shard.workers) {
        if (of_group(w) && w.*role) holders.push_back(w.name);
      }
      if (holders.size() != 1) {
        problems.push_back(absl::StrCat(in, label, " must be on exactly one worker, found ", holders.size(),
                                        holders.empty() ? "" : absl::StrCat(" (", absl::StrJoin(holders, ", "), ")")));
      }
    };
    count_role(&WorkerShard::embedding, "embedding");
    count_role(&WorkerShard::lm_head, "lm_head");

    // Attention: ranges sorted by begin must tile [0, L) with no gap and no overlap.
    std::vector<std::pair<LayerRange, std::string>> ranges;
    for (const WorkerShard& w : shard.workers) {
      if (of_group(w) && w.attention) ranges.emplace_back(*w.attention, w.name);
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const auto& a, const auto& b) { return a.first.begin < b.first.begin; });
    int covered = 0;
    for (const auto& [r, name] : ranges) {
      if (r.begin > covered) {
        problems.push_back(absl::StrCat(in, "attention layers [", covered, ", ", r.begin, ") are on no worker"));
      } else if (r.begin < covered) {
        problems.push_back(absl::StrCat(in, "attention layers [", r.begin, ", ", std::min(covered, r.end),
                                        ") are on more than one worker (again on '", name, "')"));
      }
      covered = std::max(covered, r.end);
    }
    if (covered < L) {
      problems.push_back(absl::StrCat(in, "attention layers [", covered, ", ", L, ") are on no worker"));
    } else if (covered > L) {
      problems.push_back(absl::StrCat(in, "attention ranges reach layer ", covered, " but the model has ", L, " layers"));
    }
  }
  if (groups.empty()) {
    problems.push_back("embedding must be on exactly one worker, found 0");
    problems.push_back("lm_head must be on exactly one worker, found 0");
    problems.push_back(absl::StrCat("attention layers [0, ", L, ") are on no worker"));
  }

  // Experts: every (layer, expert) at least once. Report per layer, listing the missing ids.
  for (int l = 0; l < L; ++l) {
    std::vector<bool> hosted(E, false);
    for (const WorkerShard& w : shard.workers) {
      for (int e : w.ExpertsOfLayer(l, E)) {
        if (e >= 0 && e < E) hosted[e] = true;
      }
    }
    std::vector<int> missing;
    for (int e = 0; e < E; ++e) {
      if (!hosted[e]) missing.push_back(e);
    }
    if (!missing.empty()) {
      problems.push_back(absl::StrCat("layer ", l, ": experts [", absl::StrJoin(missing, ", "), "] are on no worker"));
    }
  }

  if (problems.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("shard config for ", shard.model, " is invalid:\n  ",
                                                 absl::StrJoin(problems, "\n  ")));
}

std::string ShardConfigToYaml(const ShardConfig& shard) {
  YAML::Emitter out;
  out << YAML::BeginMap << YAML::Key << "model" << YAML::Value << shard.model;
  if (shard.expert_dtype != "bf16") out << YAML::Key << "expert_dtype" << YAML::Value << shard.expert_dtype;
  if (shard.steps_in_flight > 0 || shard.kv_dtype != DType::kBF16 || shard.wire_dtype != DType::kF32) {
    out << YAML::Key << "serving" << YAML::Value << YAML::Flow << YAML::BeginMap;
    if (shard.steps_in_flight > 0) out << YAML::Key << "steps_in_flight" << YAML::Value << shard.steps_in_flight;
    if (shard.kv_dtype != DType::kBF16) out << YAML::Key << "kv_dtype" << YAML::Value << model::KvDTypeName(shard.kv_dtype);
    if (shard.wire_dtype != DType::kF32) out << YAML::Key << "wire_dtype" << YAML::Value << WireDTypeName(shard.wire_dtype);
    out << YAML::EndMap;
  }
  out << YAML::Key << "workers" << YAML::Value << YAML::BeginSeq;
  for (const WorkerShard& w : shard.workers) {
    out << YAML::BeginMap << YAML::Key << "name" << YAML::Value << w.name;
    out << YAML::Key << "device" << YAML::Value << w.device;
    if (!w.group.empty()) out << YAML::Key << "group" << YAML::Value << w.group;
    if (w.embedding) out << YAML::Key << "embedding" << YAML::Value << true;
    if (w.attention) {
      out << YAML::Key << "attention" << YAML::Value << YAML::Flow << YAML::BeginSeq << w.attention->begin
          << w.attention->end << YAML::EndSeq;
    }
    if (w.lm_head) out << YAML::Key << "lm_head" << YAML::Value << true;
    if (!w.experts.empty()) {
      out << YAML::Key << "experts" << YAML::Value << YAML::BeginSeq;
      for (const ExpertBlock& b : w.experts) {
        out << YAML::Flow << YAML::BeginMap << YAML::Key << "layers" << YAML::Value << YAML::Flow
            << YAML::BeginSeq << b.layers.begin << b.layers.end << YAML::EndSeq << YAML::Key << "ids";
        if (b.all) {
          out << YAML::Value << "all";
        } else {
          out << YAML::Value << YAML::Flow << b.ids;
        }
        out << YAML::EndMap;
      }
      out << YAML::EndSeq;
    }
    out << YAML::EndMap;
  }
  out << YAML::EndSeq << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

ShardConfig WholeModelShardConfig(const std::string& model_dir, const std::string& name, const std::string& device,
                                  const model::ModelConfig& config, const std::string& expert_dtype) {
  ShardConfig shard;
  shard.model = model_dir;
  shard.expert_dtype = expert_dtype;
  WorkerShard w;
  w.name = name;
  w.device = device;
  w.embedding = true;
  w.lm_head = true;
  w.attention = LayerRange{0, config.num_hidden_layers};
  ExpertBlock all;
  all.layers = LayerRange{0, config.num_hidden_layers};
  all.all = true;
  w.experts.push_back(all);
  shard.workers.push_back(std::move(w));
  return shard;
}

}  // namespace mmx::plan
