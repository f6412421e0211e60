#include "tools/plan_command.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/config.h"
#include "model/state_bytes.h"
#include "plan/cluster_spec.h"
#include "plan/cost_model.h"
#include "plan/layout.h"
#include "plan/model_sizes.h"
#include "plan/plan_report.h"
#include "plan/planner.h"
#include "plan/shard_config.h"

namespace mmx::tools {
namespace {

constexpr char kSchema[] = R"(
Cluster spec (YAML):
  workers:
    - name: h100              # with count > 1: h100-0, h100-1, ...
      count: 8                # default 1
      device: cuda            # cuda | cpu
      memory_gib: 80          # usable device memory (HBM, or RAM for cpu)
      mem_bandwidth_gbs: 3350 # GB/s
      tflops: 989             # dense bf16 TFLOP/s
      network_gbps: 400       # NIC, Gbit/s
      network_latency_us: 5   # optional, default 10
      price_per_hour: 2.50    # optional: tokens per dollar
  serving:                    # optional; the defaults:
    expert_dtype: bf16        # bf16 | int8
    kv_dtype: bf16            # bf16 (as served) | fp32 (golden-exact)
    wire_dtype: fp32          # fp32 (golden-exact) | bf16: activations between workers
    max_context: 131072
    max_sequences: 32
    steps_in_flight: 0        # 0: the planner recommends (see the report)
See docs/capacity-planning.md.)";

// A --model that names config.json stands for its directory in the shard config.
std::string ModelDir(const std::string& model) {
  std::error_code ec;
  if (std::filesystem::is_directory(model, ec)) return model;
  const std::string parent = std::filesystem::path(model).parent_path().string();
  return parent.empty() ? "." : parent;
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::PermissionDeniedError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

void Print(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

absl::Status Report(const model::ModelConfig& config, const plan::ClusterSpec& cluster,
                    const plan::PlanResult& result, const plan::ReportContext& context, bool json) {
  Print(json ? plan::ReportJson(config, cluster, result, context)
             : plan::ReportText(config, cluster, result, context));
  if (result.fits) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat("the model does not fit this cluster: ", result.shortfall));
}

absl::Status CheckShard(const PlanOptions& o, plan::ClusterSpec cluster) {
  MMX_ASSIGN_OR_RETURN(plan::ShardConfig shard, plan::LoadShardConfig(o.check));
  const std::string model_source = o.model.empty() ? shard.model : o.model;
  MMX_ASSIGN_OR_RETURN(model::ModelConfig config, model::ModelConfig::FromFile(model_source));
  MMX_RETURN_IF_ERROR(plan::ValidateShardConfig(shard, config));
  // The shard config decides how workers load experts, whatever the spec's serving says, and the
  // steps in flight it asks for (unless the command line asks for others).
  cluster.serving.expert_dtype = shard.expert_dtype;
  if (o.kv_dtype.empty()) cluster.serving.kv_dtype = shard.kv_dtype;
  if (o.wire_dtype.empty()) cluster.serving.wire_dtype = shard.wire_dtype;
  if (o.steps_in_flight < 0 && shard.steps_in_flight > 0) cluster.serving.steps_in_flight = shard.steps_in_flight;
  MMX_ASSIGN_OR_RETURN(plan::Layout layout, plan::LayoutFromShardConfig(shard, cluster, config.num_hidden_layers,
                                                                        config.num_local_experts));
  const plan::CostModel cost(plan::ComputeModelSizes(config), cluster);
  plan::PlanResult result;
  result.prediction = cost.Predict(layout);
  result.layout = std::move(layout);
  for (const plan::WorkerRoles& r : result.layout.workers) result.num_stages += r.attention ? 1 : 0;
  result.num_groups = result.layout.num_groups;
  result.num_stages = (result.num_stages + result.num_groups - 1) / result.num_groups;  // per group
  result.fits = result.prediction.fits();
  std::vector<std::string> over;
  for (int w : result.prediction.over_capacity) {
    const plan::WorkerMemory& m = result.prediction.memory[w];
    over.push_back(absl::StrCat("worker '", cluster.workers[w].name, "' needs ", plan::FormatGiB(m.total()),
                                " but has ", plan::FormatGiB(m.usable), " usable (over by ",
                                plan::FormatGiB(m.total() - m.usable), ")"));
    result.short_bytes += m.total() - m.usable;
  }
  result.shortfall = absl::StrJoin(over, "; ");
  plan::ReportContext context{model_source, o.cluster, o.check, /*check=*/true};
  return Report(config, cluster, result, context, o.json);
}

}  // namespace

CLI::App* AddPlanCommand(CLI::App& app, PlanOptions* o) {
  CLI::App* plan = app.add_subcommand(
      "plan", "Plan a cluster: does the model fit, where does each layer and expert go, how fast will it be");
  plan->add_option("--model", o->model, "Checkpoint directory or its config.json (with --check: default the shard "
                                        "config's model)");
  plan->add_option("--cluster", o->cluster,
                   "Cluster spec (YAML). serving defaults: expert_dtype bf16, max_context 131072, max_sequences 32")
      ->required();
  plan->add_option("--out", o->out, "Write the planned shard config here (only when the model fits)");
  plan->add_option("--check", o->check, "Report on this hand-written shard config instead of planning");
  plan->add_flag("--json", o->json, "Print the report as JSON");
  plan->add_option("--steps-in-flight", o->steps_in_flight,
                   "Predict with this many steps in flight (as `serve --steps-in-flight`); 0 = the planner's "
                   "choice; default: the spec's serving.steps_in_flight")
      ->check(CLI::Range(0, plan::kMaxStepsInFlight));
  plan->add_option("--kv-dtype", o->kv_dtype,
                   "The KV cache's dtype to plan for: bf16 (as served) or fp32 (golden-exact, twice the KV "
                   "memory); default: the spec's serving.kv_dtype (with --check: the shard config's), else bf16")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  plan->add_option("--wire-dtype", o->wire_dtype,
                   "How activations cross between workers, for the network term: fp32 (golden-exact) or bf16 "
                   "(half the bytes); default: the spec's serving.wire_dtype (with --check: the shard config's), "
                   "else fp32")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  plan->add_option("--max-sequences", o->max_sequences, "Override the spec's serving.max_sequences")
      ->check(CLI::Range(1, 1 << 20));
  plan->footer(kSchema);
  return plan;
}

absl::Status RunPlan(const PlanOptions& o) {
  MMX_ASSIGN_OR_RETURN(plan::ClusterSpec cluster, plan::LoadClusterSpec(o.cluster));
  if (o.steps_in_flight >= 0) cluster.serving.steps_in_flight = o.steps_in_flight;
  if (o.max_sequences > 0) cluster.serving.max_sequences = o.max_sequences;
  if (!o.kv_dtype.empty()) {
    MMX_ASSIGN_OR_RETURN(cluster.serving.kv_dtype, model::ParseKvDType(o.kv_dtype));
  }
  if (!o.wire_dtype.empty()) {
    MMX_ASSIGN_OR_RETURN(cluster.serving.wire_dtype, ParseWireDType(o.wire_dtype));
  }
  if (!o.check.empty()) {
    if (!o.out.empty()) return absl::InvalidArgumentError("--out and --check do not go together");
    return CheckShard(o, std::move(cluster));
  }
  if (o.model.empty()) return absl::InvalidArgumentError("plan needs --model DIR_OR_CONFIG_JSON (or --check SHARD.yaml)");
  MMX_ASSIGN_OR_RETURN(model::ModelConfig config, model::ModelConfig::FromFile(o.model));
  const plan::PlanResult result = plan::Plan(config, cluster, ModelDir(o.model));
  if (result.fits) {
    // The runtime will check this config before loading a byte; check it here first too.
    if (absl::Status valid = plan::ValidateShardConfig(result.shard, config); !valid.ok()) {
      return absl::InternalError(absl::StrCat("the planner produced an invalid shard config (a bug): ",
                                              valid.message()));
    }
    if (!o.out.empty()) MMX_RETURN_IF_ERROR(WriteFile(o.out, plan::ShardConfigToYaml(result.shard)));
  }
  plan::ReportContext context{o.model, o.cluster, result.fits ? o.out : "", /*check=*/false};
  return Report(config, cluster, result, context, o.json);
}

}  // namespace mmx::tools
