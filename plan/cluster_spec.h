// ClusterSpec: the machines a user has (or is pricing) and the serving target, as the planner
// reads them. The YAML schema (stable; docs/capacity-planning.md documents it):
//
//   workers:
//     - name: h100              # with count > 1 the workers are named h100-0, h100-1, ...
//       count: 8                # optional, default 1
//       device: cuda            # cuda | cpu
//       memory_gib: 80          # usable device memory (HBM, or RAM for cpu)
//       mem_bandwidth_gbs: 3350 # GB/s
//       tflops: 989             # dense bf16 TFLOP/s
//       network_gbps: 400       # NIC, Gbit/s
//       network_latency_us: 5   # optional (default kDefaultNetworkLatencyUs)
//       price_per_hour: 2.50    # optional: the report gives tokens per dollar
//   serving:                    # optional, defaults below
//     expert_dtype: bf16        # bf16 | int8 (weight-only, per-output-channel scales)
//     kv_dtype: bf16            # bf16 (as served) | fp32 (golden-exact): the KV cache
//     wire_dtype: fp32          # fp32 (golden-exact) | bf16 (half the bytes): activations between workers
//     max_context: 131072
//     max_sequences: 32
//
// Parsing is a pure function; it knows nothing about any model. Not here: what fits where
// (plan/planner.h) and how fast it runs (plan/cost_model.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/dtype.h"

namespace mmx::plan {

inline constexpr double kDefaultNetworkLatencyUs = 10.0;
inline constexpr int64_t kDefaultMaxContext = 131072;
inline constexpr int kDefaultMaxSequences = 32;

enum class DeviceKind { kCpu, kCuda };

// One machine (one process, one device) after `count` has been expanded.
struct WorkerSpec {
  std::string name;        // unique: "h100-3", or the entry's name when count is 1
  std::string group;       // the entry's name ("h100"), for messages and fixes
  DeviceKind device = DeviceKind::kCpu;
  double memory_gib = 0;
  double mem_bandwidth_gbs = 0;
  double tflops = 0;
  double network_gbps = 0;
  double network_latency_us = kDefaultNetworkLatencyUs;
  std::optional<double> price_per_hour;

  bool operator==(const WorkerSpec&) const = default;
};

// The most steps in flight the planner considers (and a spec may ask for).
inline constexpr int kMaxStepsInFlight = 16;

struct ServingSpec {
  std::string expert_dtype = "bf16";  // bf16 | int8
  DType kv_dtype = DType::kBF16;      // of the softmax KV cache (model/state_bytes.h)
  DType wire_dtype = DType::kF32;     // of activations between workers (transport/activation_rows.h)
  int64_t max_context = kDefaultMaxContext;
  int max_sequences = kDefaultMaxSequences;
  // Waves of the running sequences with a step out at once (`mmx-coord serve --steps-in-flight`);
  // 0: the planner recommends (plan/cost_model.h PredictInFlight).
  int steps_in_flight = 0;

  bool int8_experts() const { return expert_dtype == "int8"; }
  bool operator==(const ServingSpec&) const = default;
};

struct ClusterSpec {
  std::vector<WorkerSpec> workers;  // expanded, in file order
  ServingSpec serving;

  // Index of the worker called `name`, or -1.
  int Find(const std::string& name) const;
};

// Parses the YAML text. InvalidArgument naming `source`, the line and the key for: a YAML
// syntax error, an unknown key, a missing required key, a value of the wrong type, a size or
// figure that is zero or negative (network_latency_us and price_per_hour may be 0), a count
// below 1, a device other than cpu or cuda, an expert_dtype other than bf16 or int8, and two
// workers with the same (expanded) name.
absl::StatusOr<ClusterSpec> ParseClusterSpec(const std::string& yaml_text,
                                             const std::string& source = "cluster spec");
// Reads and parses `path`: NotFound if it cannot be read, otherwise as ParseClusterSpec.
absl::StatusOr<ClusterSpec> LoadClusterSpec(const std::string& path);

// The shard-config device string of a worker: "cuda:0" (one GPU per worker) or "cpu".
std::string ShardDevice(const WorkerSpec& worker);

}  // namespace mmx::plan
