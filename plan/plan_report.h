// The planner's report, for people (a text table) and for programs (JSON): the model's
// parameters and bytes by component (MODEL.md §7), the serving target, each worker's roles and
// memory against its capacity, the predicted decode step split into compute, memory and
// network, the bottleneck, tokens/s, time per output token, time to first token, tokens per
// dollar, and, when it does not fit, what is short. Formatting only: every number comes from
// plan/model_sizes.h and plan/cost_model.h.
#pragma once

#include <string>

#include "model/config.h"
#include "plan/cluster_spec.h"
#include "plan/planner.h"

namespace mmx::plan {

struct ReportContext {
  std::string model_source;    // as given to --model (or the shard config's model)
  std::string cluster_source;  // the cluster spec file
  std::string shard_source;    // the shard config written (plan --out) or checked (--check); may be empty
  bool check = false;          // true: a hand-written shard config, not the planner's
};

std::string ReportText(const model::ModelConfig& config, const ClusterSpec& cluster, const PlanResult& result,
                       const ReportContext& context);
// One JSON object, keys in a fixed order; byte counts are integers, times are seconds.
std::string ReportJson(const model::ModelConfig& config, const ClusterSpec& cluster, const PlanResult& result,
                       const ReportContext& context);

// 456089655296 -> "456,089,655,296".
std::string WithCommas(int64_t n);
// Decimal units with 4 significant digits, as MODEL.md §7 writes them: "339.7 MB", "10.87 GB".
std::string FormatBytes(int64_t bytes);

}  // namespace mmx::plan
