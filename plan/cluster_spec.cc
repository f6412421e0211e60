#include "plan/cluster_spec.h"

#include <cmath>
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

// Worker entries larger than this are almost certainly a typo, and would make the planner's
// per-worker tables needlessly large.
constexpr int64_t kMaxCount = 4096;

// Every message is "SOURCE:LINE: KEY: what is wrong", so the user can jump to it.
absl::Status Error(const std::string& source, const YAML::Node& node, const std::string& what) {
  const YAML::Mark mark = node.Mark();
  if (mark.line >= 0) return absl::InvalidArgumentError(absl::StrCat(source, ":", mark.line + 1, ": ", what));
  return absl::InvalidArgumentError(absl::StrCat(source, ": ", what));
}

absl::Status CheckKeys(const std::string& source, const YAML::Node& map, const std::string& where,
                       const std::set<std::string>& allowed) {
  for (const auto& kv : map) {
    if (!kv.first.IsScalar()) return Error(source, kv.first, where + "keys must be plain names");
    const std::string key = kv.first.as<std::string>();
    if (allowed.count(key) == 0) {
      return Error(source, kv.first,
                   absl::StrCat(where, key, ": unknown key (known: ", absl::StrJoin(allowed, ", "), ")"));
    }
  }
  return absl::OkStatus();
}

// Reads map[key] as a number. `positive`: must be > 0; otherwise >= 0.
absl::StatusOr<double> Number(const std::string& source, const YAML::Node& map, const std::string& key,
                              const std::string& where, bool positive) {
  const YAML::Node node = map[key];
  double value = 0;
  bool ok = node.IsScalar();
  if (ok) {
    try {
      value = node.as<double>();
    } catch (const YAML::Exception&) {
      ok = false;
    }
  }
  if (!ok || !std::isfinite(value)) {
    return Error(source, node, absl::StrCat(where, key, ": expected a number"));
  }
  if (positive && value <= 0) {
    return Error(source, node, absl::StrCat(where, key, ": must be greater than 0, got ", node.as<std::string>()));
  }
  if (!positive && value < 0) {
    return Error(source, node, absl::StrCat(where, key, ": must not be negative, got ", node.as<std::string>()));
  }
  return value;
}

absl::StatusOr<int64_t> Integer(const std::string& source, const YAML::Node& map, const std::string& key,
                                const std::string& where, int64_t min_value) {
  const YAML::Node node = map[key];
  int64_t value = 0;
  bool ok = node.IsScalar();
  if (ok) {
    try {
      value = node.as<int64_t>();
    } catch (const YAML::Exception&) {
      ok = false;
    }
  }
  if (!ok) return Error(source, node, absl::StrCat(where, key, ": expected a whole number"));
  if (value < min_value) {
    return Error(source, node, absl::StrCat(where, key, ": must be at least ", min_value, ", got ", value));
  }
  return value;
}

bool IsNameChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
         c == '.';
}

struct Entry {
  WorkerSpec prototype;
  int64_t count = 1;
};

absl::StatusOr<Entry> ParseEntry(const std::string& source, const YAML::Node& node, size_t index) {
  std::string where = absl::StrCat("workers[", index, "].");
  if (!node.IsMap()) return Error(source, node, absl::StrCat("workers[", index, "]: expected a mapping"));
  MMX_RETURN_IF_ERROR(CheckKeys(source, node, where,
                                {"name", "count", "device", "memory_gib", "mem_bandwidth_gbs", "tflops",
                                 "network_gbps", "network_latency_us", "price_per_hour"}));
  for (const char* key : {"name", "device", "memory_gib", "mem_bandwidth_gbs", "tflops", "network_gbps"}) {
    if (!node[key]) return Error(source, node, absl::StrCat(where, key, ": missing (required)"));
  }
  Entry e;
  WorkerSpec& w = e.prototype;
  const YAML::Node name = node["name"];
  if (!name.IsScalar() || name.as<std::string>().empty()) {
    return Error(source, name, where + "name: expected a non-empty name");
  }
  w.name = w.group = name.as<std::string>();
  for (char c : w.name) {
    if (!IsNameChar(c)) {
      return Error(source, name, absl::StrCat(where, "name: '", w.name,
                                              "' may use only letters, digits, '-', '_' and '.'"));
    }
  }
  where = absl::StrCat("workers[", index, "] (", w.name, ").");
  const YAML::Node device = node["device"];
  const std::string device_text = device.IsScalar() ? device.as<std::string>() : "";
  if (device_text == "cuda") {
    w.device = DeviceKind::kCuda;
  } else if (device_text == "cpu") {
    w.device = DeviceKind::kCpu;
  } else {
    return Error(source, device, absl::StrCat(where, "device: '", device_text, "' is neither cpu nor cuda"));
  }
  if (node["count"]) {
    MMX_ASSIGN_OR_RETURN(e.count, Integer(source, node, "count", where, 1));
  }
  if (e.count > kMaxCount) {
    return Error(source, node["count"], absl::StrCat(where, "count: ", e.count, " is more than ", kMaxCount));
  }
  MMX_ASSIGN_OR_RETURN(w.memory_gib, Number(source, node, "memory_gib", where, true));
  MMX_ASSIGN_OR_RETURN(w.mem_bandwidth_gbs, Number(source, node, "mem_bandwidth_gbs", where, true));
  MMX_ASSIGN_OR_RETURN(w.tflops, Number(source, node, "tflops", where, true));
  MMX_ASSIGN_OR_RETURN(w.network_gbps, Number(source, node, "network_gbps", where, true));
  if (node["network_latency_us"]) {
    MMX_ASSIGN_OR_RETURN(w.network_latency_us, Number(source, node, "network_latency_us", where, false));
  }
  if (node["price_per_hour"]) {
    MMX_ASSIGN_OR_RETURN(double price, Number(source, node, "price_per_hour", where, false));
    w.price_per_hour = price;
  }
  return e;
}

absl::Status ParseServing(const std::string& source, const YAML::Node& node, ServingSpec* serving) {
  if (!node.IsMap()) return Error(source, node, "serving: expected a mapping");
  MMX_RETURN_IF_ERROR(CheckKeys(source, node, "serving.", {"expert_dtype", "kv_dtype", "wire_dtype", "max_context",
                                                           "max_sequences", "steps_in_flight"}));
  if (const YAML::Node n = node["kv_dtype"]) {
    absl::StatusOr<DType> dtype = model::ParseKvDType(n.IsScalar() ? n.as<std::string>() : std::string("?"));
    if (!dtype.ok()) return Error(source, n, absl::StrCat("serving.", dtype.status().message()));
    serving->kv_dtype = *dtype;
  }
  if (const YAML::Node n = node["wire_dtype"]) {
    absl::StatusOr<DType> dtype = ParseWireDType(n.IsScalar() ? n.as<std::string>() : std::string("?"));
    if (!dtype.ok()) return Error(source, n, absl::StrCat("serving.", dtype.status().message()));
    serving->wire_dtype = *dtype;
  }
  if (const YAML::Node dtype = node["expert_dtype"]) {
    serving->expert_dtype = dtype.IsScalar() ? dtype.as<std::string>() : "";
    if (serving->expert_dtype != "bf16" && serving->expert_dtype != "int8") {
      return Error(source, dtype,
                   absl::StrCat("serving.expert_dtype: '", serving->expert_dtype, "' is neither bf16 nor int8"));
    }
  }
  if (node["max_context"]) {
    MMX_ASSIGN_OR_RETURN(serving->max_context, Integer(source, node, "max_context", "serving.", 1));
  }
  if (node["max_sequences"]) {
    MMX_ASSIGN_OR_RETURN(int64_t n, Integer(source, node, "max_sequences", "serving.", 1));
    if (n > 1 << 20) return Error(source, node["max_sequences"], "serving.max_sequences: too large");
    serving->max_sequences = static_cast<int>(n);
  }
  if (node["steps_in_flight"]) {
    MMX_ASSIGN_OR_RETURN(int64_t n, Integer(source, node, "steps_in_flight", "serving.", 0));
    if (n > kMaxStepsInFlight) {
      return Error(source, node["steps_in_flight"],
                   absl::StrCat("serving.steps_in_flight: at most ", kMaxStepsInFlight, " (0 = the planner's choice)"));
    }
    serving->steps_in_flight = static_cast<int>(n);
  }
  return absl::OkStatus();
}

}  // namespace

int ClusterSpec::Find(const std::string& name) const {
  for (size_t i = 0; i < workers.size(); ++i) {
    if (workers[i].name == name) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<ClusterSpec> ParseClusterSpec(const std::string& yaml_text, const std::string& source) {
  YAML::Node root;
  try {
    root = YAML::Load(yaml_text);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ": YAML syntax error: ", e.msg));
  }
  if (!root.IsMap()) return absl::InvalidArgumentError(source + ": expected a mapping with 'workers' (and 'serving')");
  ClusterSpec spec;
  try {
    MMX_RETURN_IF_ERROR(CheckKeys(source, root, "", {"workers", "serving"}));
    const YAML::Node workers = root["workers"];
    if (!workers || !workers.IsSequence() || workers.size() == 0) {
      return absl::InvalidArgumentError(source + ": 'workers' must be a non-empty list");
    }
    std::map<std::string, int> line_of;  // expanded name -> 1-based line of its entry
    for (size_t i = 0; i < workers.size(); ++i) {
      MMX_ASSIGN_OR_RETURN(Entry e, ParseEntry(source, workers[i], i));
      for (int64_t k = 0; k < e.count; ++k) {
        WorkerSpec w = e.prototype;
        if (e.count > 1) w.name = absl::StrCat(e.prototype.name, "-", k);
        const int line = workers[i]["name"].Mark().line + 1;
        if (auto [it, inserted] = line_of.emplace(w.name, line); !inserted) {
          return Error(source, workers[i]["name"],
                       absl::StrCat("workers[", i, "].name: worker name '", w.name, "' is already used (line ",
                                    it->second, ")"));
        }
        spec.workers.push_back(std::move(w));
      }
    }
    if (const YAML::Node serving = root["serving"]) MMX_RETURN_IF_ERROR(ParseServing(source, serving, &spec.serving));
  } catch (const YAML::Exception& e) {
    // Anything the checks above did not anticipate still becomes one clear line.
    return absl::InvalidArgumentError(absl::StrCat(source, ":", e.mark.line + 1, ": ", e.msg));
  }
  return spec;
}

absl::StatusOr<ClusterSpec> LoadClusterSpec(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read cluster spec ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseClusterSpec(text.str(), path);
}

std::string ShardDevice(const WorkerSpec& worker) { return worker.device == DeviceKind::kCuda ? "cuda:0" : "cpu"; }

}  // namespace mmx::plan
