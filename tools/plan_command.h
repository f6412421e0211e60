// `mmx-coord plan`: capacity planning from a cluster spec (plan/cluster_spec.h).
//
//   mmx-coord plan --model DIR_OR_CONFIG_JSON --cluster FILE [--out SHARD.yaml] [--json]
//     plans the model on the cluster, writes the shard config (--out) and prints the report.
//   mmx-coord plan --check SHARD.yaml --cluster FILE [--model DIR_OR_CONFIG_JSON] [--json]
//     the same report for a hand-written shard config whose worker names are the spec's.
//
// Returns OK when the model fits; ResourceExhausted with what is short (and the smallest
// single fix) when it does not, after printing the report; InvalidArgument or NotFound for bad
// input (a spec, shard config or config.json that is missing or malformed).
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace mmx::tools {

struct PlanOptions {
  std::string model;    // checkpoint directory or config.json
  std::string cluster;  // cluster spec (YAML)
  std::string out;      // where to write the shard config; empty: do not write
  std::string check;    // a shard config to check instead of planning
  bool json = false;
  std::string kv_dtype;  // "" = the spec's serving.kv_dtype (with --check: the shard config's)
  std::string wire_dtype;  // "" = the spec's serving.wire_dtype (with --check: the shard config's)
  int steps_in_flight = -1;  // -1: the spec's serving.steps_in_flight; 0: the planner's choice
  int max_sequences = 0;     // 0: the spec's serving.max_sequences
};

CLI::App* AddPlanCommand(CLI::App& app, PlanOptions* options);
absl::Status RunPlan(const PlanOptions& options);

}  // namespace mmx::tools
