// ShardConfig: which worker holds which part of the model (the YAML schema below is fixed;
// the planner and people both write it). Parsing and validation are pure functions: the
// runtime checks any shard config, planned or hand-written, before a byte of weights loads.
//
//   model: /path/to/checkpoint      # as every worker sees it
//   expert_dtype: bf16              # optional: bf16 | int8
//   serving: {steps_in_flight: 2,   # optional: what `mmx-coord serve` does when its own flag is 0
//             kv_dtype: bf16,       # optional: bf16 (default, as served) | fp32 (golden-exact);
//                                   #   `--kv-dtype` on run and serve overrides it
//             wire_dtype: fp32}     # optional: activations between workers, fp32 (default,
//                                   #   golden-exact) | bf16 (half the bytes); `--wire-dtype`
//   workers:
//     - name: stage0                # unique; `mmx-worker --name stage0` claims this entry
//       device: cpu                 # cpu | cuda:N   (default cpu)
//       group: a                    # optional attention group (default: one unnamed group)
//       embedding: true             # holds embed_tokens (exactly one worker per group)
//       attention: [0, 4]           # half-open layer range: norms, attention, router, state
//       lm_head: true               # final norm + lm_head + sampling (exactly one per group)
//       experts:                    # any number of blocks
//         - layers: [0, 8]          # half-open
//           ids: [0, 1, 2, 3]       # or: all
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/dtype.h"
#include "model/config.h"

namespace mmx::plan {

struct LayerRange {
  int begin = 0;
  int end = 0;  // exclusive
  bool Contains(int layer) const { return layer >= begin && layer < end; }
  bool operator==(const LayerRange&) const = default;
};

struct ExpertBlock {
  LayerRange layers;
  bool all = false;       // `ids: all`
  std::vector<int> ids;   // when !all
  bool Holds(int layer, int expert) const;
};

struct WorkerShard {
  std::string name;
  std::string device = "cpu";
  // Its attention group: each group has its own embedding, attention over every layer and
  // lm_head, and serves its own sequences; experts are shared by all groups (an expert-only
  // worker has none). "" is the default group.
  std::string group;
  bool embedding = false;
  bool lm_head = false;
  std::optional<LayerRange> attention;
  std::vector<ExpertBlock> experts;

  // Expert ids of `layer` this worker holds, ascending (num_experts resolves `all`).
  std::vector<int> ExpertsOfLayer(int layer, int num_experts) const;
  // An expert host: no embedding, attention or lm_head (a step can be routed around it when
  // each of its experts is held elsewhere).
  bool experts_only() const { return !embedding && !attention && !lm_head; }
};

struct ShardConfig {
  std::string model;
  std::string expert_dtype = "bf16";
  // The planner's choice of steps in flight (0: none; the coordinator then runs one per attention
  // stage).
  int steps_in_flight = 0;
  // The softmax KV cache's dtype on every attention worker (model/state_bytes.h).
  DType kv_dtype = DType::kBF16;
  // How activations cross between workers (transport/activation_rows.h).
  DType wire_dtype = DType::kF32;
  std::vector<WorkerShard> workers;

  const WorkerShard* Find(const std::string& name) const;
};

// Parses the YAML text. InvalidArgument with the source name and the YAML line for syntax
// errors, unknown keys, wrong types, and ranges that are not [begin, end) with begin < end.
absl::StatusOr<ShardConfig> ParseShardConfig(const std::string& yaml_text,
                                             const std::string& source = "shard config");
absl::StatusOr<ShardConfig> LoadShardConfig(const std::string& path);

// The attention groups, in the order of their first worker ("" for the default group); none when
// no worker holds attention, embedding or lm_head.
std::vector<std::string> AttentionGroups(const ShardConfig& shard);

// Checks the config against the model: in each attention group, attention ranges cover [0, L)
// exactly once and in order, and embedding and lm_head are on exactly one worker; an expert-only
// worker has no group; every (layer, expert) pair is hosted at least once; names
// unique and non-empty, devices well-formed, layer and expert ids in range. Every violation is
// reported, one per line, in one InvalidArgument.
absl::Status ValidateShardConfig(const ShardConfig& shard, const model::ModelConfig& config);

// One worker, `name` on `device`, holding the whole model: embedding, every attention layer,
// every expert and lm_head (a single machine; `mmx-coord run`).
ShardConfig WholeModelShardConfig(const std::string& model_dir, const std::string& name, const std::string& device,
                                  const model::ModelConfig& config, const std::string& expert_dtype = "bf16");

// Writes the config back as YAML in the schema above.
std::string ShardConfigToYaml(const ShardConfig& shard);

}  // namespace mmx::plan
