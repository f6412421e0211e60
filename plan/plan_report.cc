#include "plan/plan_report.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "model/state_bytes.h"
#include "nlohmann/json.hpp"
#include "plan/cost_model.h"
#include "plan/model_sizes.h"

namespace mmx::plan {
namespace {

using Json = nlohmann::ordered_json;

struct Component {
  std::string name;
  int64_t params = 0;
  int64_t bf16 = 0;
  int64_t served = 0;  // bytes as this serving target holds them (experts int8 or bf16)
};

// MODEL.md §7's table, counted from the tensor list.
std::vector<Component> Components(const ModelSizes& s, bool int8) {
  const int L = s.num_layers, E = s.num_experts;
  const int softmax = s.num_softmax_layers(), lightning = L - softmax;
  auto plain = [](std::string name, int64_t params) {
    return Component{std::move(name), params, params * kWeightBytes, params * kWeightBytes};
  };
  std::vector<Component> rows;
  rows.push_back({"one expert", s.expert_params, s.expert_params * kWeightBytes, s.ExpertBytes(int8)});
  rows.push_back({absl::StrCat("one layer's ", E, " experts"), s.expert_params * E, s.expert_params * E * kWeightBytes,
                  s.ExpertBytes(int8) * E});
  rows.push_back({absl::StrCat("all ", WithCommas(s.num_expert_pairs()), " experts"), s.all_expert_params(),
                  s.all_expert_params() * kWeightBytes, s.ExpertBytes(int8) * s.num_expert_pairs()});
  for (bool is_softmax : {false, true}) {
    const int n = is_softmax ? softmax : lightning;
    if (n == 0) continue;
    const int first = static_cast<int>(std::find(s.is_softmax.begin(), s.is_softmax.end(), is_softmax) -
                                       s.is_softmax.begin());
    const char* kind = is_softmax ? "softmax" : "lightning";
    rows.push_back(plain(absl::StrCat("one ", kind, " attention layer"), s.attention_params[first]));
    rows.push_back(plain(absl::StrCat(n, " ", kind, " attention layers"), s.SumOver(s.attention_params, is_softmax)));
  }
  int64_t routers = 0, norms = s.final_norm_params;
  for (int l = 0; l < L; ++l) {
    routers += s.router_params[l];
    norms += s.norm_params[l];
  }
  rows.push_back(plain("router, one layer", s.router_params[0]));
  rows.push_back(plain(absl::StrCat("routers, all ", L), routers));
  rows.push_back(plain("norms", norms));
  rows.push_back(plain("embed_tokens", s.embedding_params));
  rows.push_back(plain("lm_head", s.lm_head_params));
  const int64_t served_total =
      (s.total_params - s.all_expert_params()) * kWeightBytes + s.ExpertBytes(int8) * s.num_expert_pairs();
  rows.push_back({"total", s.total_params, s.total_params * kWeightBytes, served_total});
  return rows;
}

std::string Roles(const WorkerRoles& r, int64_t active, int groups) {
  std::vector<std::string> parts;
  if (groups > 1 && (r.embedding || r.attention || r.lm_head)) parts.push_back(absl::StrCat("group g", r.group));
  if (r.embedding) parts.push_back("embedding");
  if (r.attention) parts.push_back(absl::StrCat("attention [", r.attention->begin, ",", r.attention->end, ")"));
  if (const int64_t n = r.NumExperts(); n > 0) {
    parts.push_back(n == active ? absl::StrCat(n, " experts") : absl::StrCat(n, " experts (", active, " active)"));
  }
  if (r.lm_head) parts.push_back("lm_head");
  return parts.empty() ? "unused" : absl::StrJoin(parts, ", ");
}

const char* ResourceName(const std::string& resource) {
  if (resource == "compute") return "compute (TFLOP/s)";
  if (resource == "network") return "network";
  return "memory bandwidth";
}

std::string Ms(double seconds) { return absl::StrFormat("%.2f", seconds * 1e3); }
std::string GiB(int64_t bytes) { return absl::StrFormat("%.1f", static_cast<double>(bytes) / kGiB); }

// The served steps in flight, their tokens/s and time per output token, and why that many.
std::string InFlightLines(const Prediction& p) {
  const InFlight& f = p.served;
  std::string out = absl::StrFormat("  %.1f tokens/s; time per output token %.2f ms; steps in flight: %d", f.tokens_per_s,
                                    f.token_s * 1e3, f.steps);
  if (f.steps > 1) {
    const InFlight& one = p.in_flight.front();
    absl::StrAppend(&out, absl::StrFormat(
        " (waves of %d sequences: a wave's step takes %.2f ms and keeps the busiest worker busy %.2f ms of it, so %d "
        "waves keep it %.0f%% busy; one step in flight: %.1f tokens/s, %.2f ms per token)",
        f.sequences_per_wave, f.step_s * 1e3, f.busiest_s * 1e3, f.steps,
        100 * std::min(1.0, f.steps * f.busiest_s / f.step_s), one.tokens_per_s, one.token_s * 1e3));
  } else if (p.in_flight.size() > 1) {
    const InFlight& two = p.in_flight[1];
    absl::StrAppend(&out, absl::StrFormat(" (2 would give %.1f tokens/s, %+.0f%%: a wave of %d sequences costs %.0f%% of "
                                          "the whole step)",
                                          two.tokens_per_s, 100 * (two.tokens_per_s / f.tokens_per_s - 1),
                                          two.sequences_per_wave, 100 * two.step_s / f.step_s));
  }
  return out + "\n";
}
Json WorkerName(const ClusterSpec& cluster, int w) { return w >= 0 ? Json(cluster.workers[w].name) : Json(nullptr); }
bool HasLayout(const PlanResult& r) { return !r.layout.workers.empty(); }

}  // namespace

std::string WithCommas(int64_t n) {
  std::string digits = absl::StrCat(n < 0 ? -n : n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return n < 0 ? "-" + out : out;
}

std::string FormatBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (b >= 1e9) return absl::StrFormat("%.4g GB", b / 1e9);
  if (b >= 1e5) return absl::StrFormat("%.4g MB", b / 1e6);
  return absl::StrFormat("%.4g KB", b / 1e3);
}

namespace {

// The serving target and what one sequence's state takes at it.
void AppendServingTarget(const ModelSizes& s, const ServingSpec& serving, std::string* out) {
  int64_t kv_per_token = 0, lightning = 0;
  for (int l = 0; l < s.num_layers; ++l) {
    kv_per_token += s.KvBytesPerToken(l, serving.kv_dtype);
    lightning += s.LightningStateBytes(l);
  }
  absl::StrAppend(out, "\nServing target: expert_dtype ", serving.expert_dtype, ", kv_dtype ",
                  model::KvDTypeName(serving.kv_dtype), ", wire_dtype ", WireDTypeName(serving.wire_dtype),
                  ", max_context ", WithCommas(serving.max_context),
                  ", max_sequences ", serving.max_sequences, "\n");
  absl::StrAppend(out, "  state per sequence: softmax KV ", WithCommas(kv_per_token), " B/token (",
                  FormatBytes(kv_per_token * model::KvRowsHeld(serving.max_context)), " at max_context), lightning ",
                  FormatBytes(lightning), " (fp32)\n");
}

}  // namespace

std::string ReportText(const model::ModelConfig& config, const ClusterSpec& cluster, const PlanResult& result,
                       const ReportContext& context) {
  const ModelSizes s = ComputeModelSizes(config);
  const ServingSpec& serving = cluster.serving;
  const CostModel cost(s, cluster);
  std::string out = absl::StrCat("mmx-coord plan", context.check ? " --check " + context.shard_source : "", ": ",
                                 context.model_source, " on ", context.cluster_source, "\n\n");

  absl::StrAppend(&out, "Model: ", config.architecture, ", ", s.num_layers, " layers (",
                  s.num_layers - s.num_softmax_layers(), " lightning, ", s.num_softmax_layers(), " softmax), ",
                  s.num_experts, " experts per layer, top-", s.experts_per_token, ", hidden ", s.hidden, "\n");
  absl::StrAppend(&out, "  parameters: ", WithCommas(s.total_params), " total; ", WithCommas(s.ActiveParamsPerToken()),
                  " active per token (without embed_tokens and lm_head)\n");
  absl::StrAppend(&out, absl::StrFormat("  %-32s %20s %12s %12s\n", "component", "params", "bf16",
                                        absl::StrCat("as served (", serving.expert_dtype, " experts)")));
  for (const Component& c : Components(s, serving.int8_experts())) {
    absl::StrAppend(&out, absl::StrFormat("  %-32s %20s %12s %12s\n", c.name, WithCommas(c.params),
                                          FormatBytes(c.bf16), FormatBytes(c.served)));
  }
  AppendServingTarget(s, serving, &out);
  int64_t capacity = 0, usable = 0;
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    capacity += static_cast<int64_t>(cluster.workers[w].memory_gib * kGiB);
    usable += cost.UsableBytes(static_cast<int>(w));
  }
  absl::StrAppend(&out, "Cluster: ", cluster.workers.size(), " workers, ", FormatGiB(capacity), ", ",
                  FormatGiB(usable), " usable (headroom: 5% + 1 GiB per GPU, 2 GiB per CPU worker)\n\n");

  if (!HasLayout(result)) {
    absl::StrAppend(&out, "Fits: NO. ", result.shortfall, "\n");
    return out;
  }
  const Prediction& p = result.prediction;
  if (result.num_groups > 1) {
    absl::StrAppend(&out, "Fits: ", result.fits ? "yes" : "NO", " (", result.num_groups, " attention groups of ",
                    result.num_stages, " stages, sharing the experts)\n");
    absl::StrAppend(&out, absl::StrFormat("  attention groups: each holds state for %d of the %d sequences and runs "
                                          "its own steps; predicted %.1f tokens/s",
                                          (serving.max_sequences + result.num_groups - 1) / result.num_groups,
                                          serving.max_sequences, p.tokens_per_s));
    if (result.one_group_tokens_per_s > 0) {
      absl::StrAppend(&out, absl::StrFormat(", against %.1f with one group", result.one_group_tokens_per_s));
    }
    absl::StrAppend(&out, "\n");
  } else {
    absl::StrAppend(&out, "Fits: ", result.fits ? "yes" : "NO", " (", result.num_stages, " attention stages)\n");
  }
  if (!result.fits) absl::StrAppend(&out, "  ", result.shortfall, "\n");
  std::vector<std::string> roles(cluster.workers.size());
  int width = 52;  // the roles column: wide enough for the longest
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    roles[w] = Roles(result.layout.workers[w], p.active_experts[w], result.layout.num_groups);
    width = std::max(width, static_cast<int>(roles[w].size()));
  }
  absl::StrAppend(&out, absl::StrFormat("\n%-14s %-6s %-*s %8s %8s %9s %15s | %8s %8s %8s %8s\n", "worker", "device",
                                        width, "roles", "weights", "state", "workspace", "total / usable",
                                        "compute", "memory", "network", "busy"));
  absl::StrAppend(&out, absl::StrFormat("%-14s %-6s %-*s %8s %8s %9s %15s | %8s %8s %8s %8s\n", "", "", width, "",
                                        "GiB", "GiB", "GiB", "GiB", "ms/step", "ms/step", "ms/step", "ms/step"));
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    const WorkerMemory& m = p.memory[w];
    const WorkerTime& t = p.decode_time[w];
    absl::StrAppend(&out, absl::StrFormat("%-14s %-6s %-*s %8s %8s %9s %15s | %8s %8s %8s %8s%s\n",
                                          cluster.workers[w].name, ShardDevice(cluster.workers[w]), width,
                                          roles[w], GiB(m.weights()), GiB(m.state()),
                                          GiB(m.workspace), absl::StrCat(GiB(m.total()), " / ", GiB(m.usable)),
                                          Ms(t.compute_s), Ms(t.memory_s), Ms(t.network_s), Ms(t.busy_s),
                                          m.fits() ? "" : "  OVER"));
  }
  const StepBreakdown& d = p.decode;
  absl::StrAppend(&out, "\nDecode step (", (serving.max_sequences + result.num_groups - 1) / result.num_groups,
                  result.num_groups > 1 ? " sequences of a group at context " : " sequences at context ",
                  WithCommas(serving.max_context), "): ", Ms(p.step_s), " ms = attention ", Ms(d.attention_s),
                  " + experts ", Ms(d.experts_s), " + network ", Ms(d.network_s), " + embedding/lm_head ",
                  Ms(d.head_tail_s), "\n");
  absl::StrAppend(&out, InFlightLines(p));
  const double resource_s = p.bottleneck_resource == "network" ? d.network_s
                           : p.bottleneck_resource == "compute" ? d.compute_bound_s
                                                                : d.memory_bound_s;
  absl::StrAppend(&out, absl::StrFormat("  bottleneck: %s (%.0f%% of the step)", ResourceName(p.bottleneck_resource),
                                        100 * resource_s / p.step_s));
  if (p.bottleneck_worker >= 0) {
    absl::StrAppend(&out, absl::StrFormat("; the largest share of the step is %s's, %.2f ms",
                                          cluster.workers[p.bottleneck_worker].name,
                                          d.by_worker[p.bottleneck_worker] * 1e3));
  }
  absl::StrAppend(&out, "\n");
  if (p.busiest_worker >= 0) {
    absl::StrAppend(&out, absl::StrFormat("  busiest worker: %s, %.2f ms busy per step; with enough sequences in flight "
                                          "to keep it busy: %.0f tokens/s\n",
                                          cluster.workers[p.busiest_worker].name,
                                          p.decode_time[p.busiest_worker].busy_s * 1e3, p.ceiling_tokens_per_s));
  }
  absl::StrAppend(&out, absl::StrFormat("Time to first token (one prompt alone, chunks of %d): 1,024 tokens %.3f s; "
                                        "32,768 tokens %.2f s%s\n",
                                        kPrefillChunk, p.ttft_1k_s, p.ttft_32k_s,
                                        serving.max_context < 32768 ? " (beyond max_context)" : ""));
  if (p.tokens_per_dollar) {
    double price = 0;
    for (const WorkerSpec& w : cluster.workers) price += *w.price_per_hour;
    absl::StrAppend(&out, absl::StrFormat("Cost: $%.2f per hour, %s tokens per dollar\n", price,
                                          WithCommas(static_cast<int64_t>(*p.tokens_per_dollar))));
  }
  absl::StrAppend(&out, absl::StrFormat(
      "\nAssumptions: uniform top-%d routing; %.0f%% of peak memory bandwidth, %.0f%% of peak TFLOP/s, %.0f%% of NIC "
      "bandwidth; activations travel as %s rows (serving.wire_dtype); no overlap between a stage's attention and its "
      "experts (docs/capacity-planning.md).\n",
      s.experts_per_token, kMemoryEfficiency * 100, kComputeEfficiency * 100, kNetworkEfficiency * 100,
      WireDTypeName(cluster.serving.wire_dtype)));
  if (!context.shard_source.empty() && !context.check) absl::StrAppend(&out, "Shard config: ", context.shard_source, "\n");
  return out;
}

std::string ReportJson(const model::ModelConfig& config, const ClusterSpec& cluster, const PlanResult& result,
                       const ReportContext& context) {
  const ModelSizes s = ComputeModelSizes(config);
  const ServingSpec& serving = cluster.serving;
  Json j;
  j["model"] = context.model_source;
  j["cluster"] = context.cluster_source;
  j["check"] = context.check;
  j["shard_config"] = context.shard_source.empty() ? Json(nullptr) : Json(context.shard_source);
  Json model;
  model["layers"] = s.num_layers;
  model["softmax_layers"] = s.num_softmax_layers();
  model["experts_per_layer"] = s.num_experts;
  model["experts_per_token"] = s.experts_per_token;
  model["parameters"] = s.total_params;
  model["active_parameters_per_token"] = s.ActiveParamsPerToken();
  Json components = Json::array();
  for (const Component& c : Components(s, serving.int8_experts())) {
    components.push_back({{"component", c.name}, {"params", c.params}, {"bf16_bytes", c.bf16},
                          {"served_bytes", c.served}});
  }
  model["components"] = components;
  j["model_sizes"] = model;
  j["serving"] = {{"expert_dtype", serving.expert_dtype}, {"kv_dtype", model::KvDTypeName(serving.kv_dtype)},
                  {"wire_dtype", WireDTypeName(serving.wire_dtype)},
                  {"max_context", serving.max_context},
                  {"max_sequences", serving.max_sequences}};
  j["fits"] = result.fits;
  j["shortfall"] = result.fits ? Json(nullptr)
                               : Json({{"message", result.shortfall}, {"short_bytes", result.short_bytes}});
  if (!HasLayout(result)) return j.dump(2) + "\n";

  const Prediction& p = result.prediction;
  j["attention_stages"] = result.num_stages;
  j["attention_groups"] = result.num_groups;
  Json workers = Json::array();
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    const WorkerMemory& m = p.memory[w];
    const WorkerTime& t = p.decode_time[w];
    const WorkerRoles& r = result.layout.workers[w];
    Json worker;
    worker["name"] = cluster.workers[w].name;
    worker["device"] = ShardDevice(cluster.workers[w]);
    worker["embedding"] = r.embedding;
    worker["attention"] = r.attention ? Json::array({r.attention->begin, r.attention->end}) : Json(nullptr);
    worker["lm_head"] = r.lm_head;
    worker["experts"] = r.NumExperts();
    worker["active_experts"] = p.active_experts[w];
    worker["memory"] = {{"attention_bytes", m.attention},     {"expert_bytes", m.experts},
                        {"embedding_lm_head_bytes", m.embedding_tail}, {"kv_cache_bytes", m.kv_cache},
                        {"lightning_state_bytes", m.lightning_state},   {"workspace_bytes", m.workspace},
                        {"total_bytes", m.total()},        {"usable_bytes", m.usable},
                        {"capacity_bytes", m.capacity},    {"fits", m.fits()}};
    worker["decode_step"] = {{"compute_s", t.compute_s}, {"memory_s", t.memory_s}, {"network_s", t.network_s},
                             {"busy_s", t.busy_s}};
    workers.push_back(worker);
  }
  j["workers"] = workers;
  j["decode"] = {{"sequences", serving.max_sequences},
                 {"context", serving.max_context},
                 {"step_s", p.step_s},
                 {"attention_s", p.decode.attention_s},
                 {"experts_s", p.decode.experts_s},
                 {"network_s", p.decode.network_s},
                 {"embedding_lm_head_s", p.decode.head_tail_s},
                 {"tokens_per_s", p.tokens_per_s},
                 {"time_per_output_token_s", p.served.token_s},
                 {"steps_in_flight", p.served.steps},
                 {"compute_bound_s", p.decode.compute_bound_s},
                 {"memory_bound_s", p.decode.memory_bound_s},
                 {"bottleneck_resource", p.bottleneck_resource},
                 {"bottleneck_worker", WorkerName(cluster, p.bottleneck_worker)},
                 {"busiest_worker", WorkerName(cluster, p.busiest_worker)},
                 {"ceiling_tokens_per_s", p.ceiling_tokens_per_s}};
  Json in_flight = Json::array();
  for (const InFlight& f : p.in_flight) {
    in_flight.push_back({{"steps", f.steps},
                         {"sequences_per_wave", f.sequences_per_wave},
                         {"step_s", f.step_s},
                         {"busiest_worker_s", f.busiest_s},
                         {"time_per_output_token_s", f.token_s},
                         {"tokens_per_s", f.tokens_per_s}});
  }
  j["in_flight"] = in_flight;
  j["time_to_first_token_s"] = {{"1024", p.ttft_1k_s}, {"32768", p.ttft_32k_s}};
  j["tokens_per_dollar"] = p.tokens_per_dollar ? Json(*p.tokens_per_dollar) : Json(nullptr);
  return j.dump(2) + "\n";
}

}  // namespace mmx::plan
