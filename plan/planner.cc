#include "plan/planner.h"

#include <algorithm>
#include <map>
#include <numeric>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "plan/attention_partition.h"
#include "plan/expert_placement.h"
#include "plan/model_sizes.h"

namespace mmx::plan {
namespace {

struct Candidate {
  Layout layout;
  double step_s = 0;
  int num_stages = 0;
};

// Workers that could be an attention stage holding state for `sequences` (room for the largest
// layer and a workspace), fastest first, ties in spec order.
std::vector<int> StageCandidates(const CostModel& cost, int64_t sequences) {
  const int L = cost.sizes().num_layers;
  int64_t largest = 0;
  for (int l = 0; l < L; ++l) largest = std::max(largest, cost.StageLayerMemory(l, sequences));
  std::vector<int> order;
  std::vector<double> seconds(cost.cluster().workers.size());
  for (size_t w = 0; w < seconds.size(); ++w) {
    seconds[w] = cost.AttentionLayerSeconds(static_cast<int>(w), 0);
    if (cost.UsableBytes(static_cast<int>(w)) >= largest + cost.StageWorkspaceBytes(sequences)) {
      order.push_back(static_cast<int>(w));
    }
  }
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return seconds[a] < seconds[b]; });
  return order;
}

// The sequences each of `groups` attention groups holds state for.
int64_t SequencesPerGroup(const CostModel& cost, int groups) {
  return (cost.cluster().serving.max_sequences + groups - 1) / groups;
}

// Gives each of `groups` groups k stages from `chosen` (fastest first): group g takes chosen[g],
// chosen[g + groups], ..., so the groups are alike; each group's pipeline in spec order. False
// when some group's layers do not fit its stages.
bool PlaceGroups(const CostModel& cost, const std::vector<int>& chosen, int groups, Layout* layout) {
  const int64_t sequences = SequencesPerGroup(cost, groups);
  layout->num_groups = groups;
  for (int g = 0; g < groups; ++g) {
    std::vector<int> stages;
    for (size_t i = g; i < chosen.size(); i += groups) stages.push_back(chosen[i]);
    std::sort(stages.begin(), stages.end());  // pipeline order = spec order
    const std::optional<std::vector<LayerRange>> ranges = PartitionLayers(cost, stages, sequences);
    if (!ranges) return false;
    for (size_t i = 0; i < stages.size(); ++i) {
      layout->workers[stages[i]].attention = (*ranges)[i];
      layout->workers[stages[i]].group = g;
    }
    layout->workers[stages.front()].embedding = true;
    layout->workers[stages.back()].lm_head = true;
  }
  // Groups numbered in spec order of their first worker, as a shard config lists them.
  std::vector<int> renumber(groups, -1);
  int next = 0;
  for (WorkerRoles& w : layout->workers) {
    if (!w.attention) continue;
    if (renumber[w.group] < 0) renumber[w.group] = next++;
    w.group = renumber[w.group];
  }
  return true;
}

// The best layout with `groups` attention groups (or, with `first_only`, the first one that
// fits) over the stage counts per group.
std::optional<Candidate> Search(const CostModel& cost, bool first_only, int groups = 1) {
  const int L = cost.sizes().num_layers, E = cost.sizes().num_experts;
  const std::vector<int> ranked = StageCandidates(cost, SequencesPerGroup(cost, groups));
  std::optional<Candidate> best;
  for (size_t k = 1; k * groups <= ranked.size() && k <= static_cast<size_t>(L); ++k) {
    const std::vector<int> chosen(ranked.begin(), ranked.begin() + k * groups);
    Candidate c;
    c.layout = Layout::Empty(L, E, cost.cluster().workers.size());
    if (!PlaceGroups(cost, chosen, groups, &c.layout)) continue;
    if (!PlaceExperts(cost, &c.layout)) continue;
    bool fits = true;
    for (const WorkerMemory& m : cost.Memory(c.layout)) fits = fits && m.fits();
    if (!fits) continue;
    c.num_stages = static_cast<int>(k);
    if (first_only) return c;
    c.step_s = cost.DecodeStepSeconds(c.layout);
    if (!best || c.step_s < best->step_s * (1 - 1e-9)) best = std::move(c);
  }
  return best;
}

ClusterSpec WithServing(ClusterSpec cluster, const ServingSpec& serving) {
  cluster.serving = serving;
  return cluster;
}

// The worker to add more of: the group with the most workers among those with usable memory
// (ties: more memory, then first in the spec); -1 if no worker has any.
int CommonKind(const CostModel& cost) {
  const ClusterSpec& cluster = cost.cluster();
  std::map<std::string, int> count;
  for (const WorkerSpec& w : cluster.workers) ++count[w.group];
  int best = -1;
  for (size_t i = 0; i < cluster.workers.size(); ++i) {
    if (cost.UsableBytes(static_cast<int>(i)) <= 0) continue;
    const WorkerSpec& w = cluster.workers[i];
    if (best < 0) {
      best = static_cast<int>(i);
      continue;
    }
    const WorkerSpec& b = cluster.workers[best];
    const int cw = count[w.group], cb = count[b.group];
    if (cw > cb || (cw == cb && w.memory_gib > b.memory_gib)) best = static_cast<int>(i);
  }
  return best;
}

// Largest value in [1, below) for which fits(value) holds, assuming it is monotone; 0 if none.
template <typename Fn>
int64_t LargestFitting(int64_t below, Fn fits) {
  if (below <= 1 || !fits(1)) return 0;
  int64_t lo = 1, hi = below - 1;
  while (lo < hi) {
    const int64_t mid = lo + (hi - lo + 1) / 2;
    if (fits(mid)) {
      lo = mid;
    } else {
      hi = mid - 1;
    }
  }
  return lo;
}

// What is short, by how much, and the single changes that would make it fit.
void DescribeShortfall(const model::ModelConfig& config, const CostModel& cost, PlanResult* result) {
  const ModelSizes& s = cost.sizes();
  const ClusterSpec& cluster = cost.cluster();
  int64_t need = s.EmbeddingBytes() + s.TailBytes() + cost.TailWorkspaceBytes() + cost.StageWorkspaceBytes() +
                 s.num_expert_pairs() * s.ExpertBytes(cost.int8());
  int64_t largest_layer = 0, have = 0, largest_worker = 0;
  for (int l = 0; l < s.num_layers; ++l) {
    need += cost.StageLayerMemory(l);
    largest_layer = std::max(largest_layer, cost.StageLayerMemory(l));
  }
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    have += cost.UsableBytes(static_cast<int>(w));
    largest_worker = std::max(largest_worker, cost.UsableBytes(static_cast<int>(w)));
  }
  result->short_bytes = std::max<int64_t>(0, need - have);
  std::string what;
  if (result->short_bytes > 0) {
    what = absl::StrCat("needs ", FormatGiB(result->short_bytes), " more memory (",
                        FormatGiB(need), " for weights, state and workspace; the workers have ", FormatGiB(have),
                        " usable)");
  } else if (largest_layer + cost.StageWorkspaceBytes() > largest_worker) {
    what = absl::StrCat("one attention layer with its state at the serving target needs ",
                        FormatGiB(largest_layer + cost.StageWorkspaceBytes()),
                        ", more than the largest worker's ", FormatGiB(largest_worker), " usable");
  } else {
    what = absl::StrCat("has ", FormatGiB(have - need),
                        " to spare in total, but not where whole layers, experts and workspaces fit");
  }

  std::vector<std::string> fixes;
  const int kind_index = CommonKind(cost);
  const WorkerSpec& kind = cluster.workers[std::max(0, kind_index)];
  const int64_t per_worker = std::max<int64_t>(1, cost.UsableBytes(std::max(0, kind_index)));
  const int64_t first = std::max<int64_t>(1, (result->short_bytes + per_worker - 1) / per_worker);
  // Try a few counts from the estimate up (packing may need more than the total says); beyond
  // kMaxExtraWorkers the advice would not be useful.
  constexpr int64_t kMaxExtraWorkers = 4096;
  for (int64_t n = first; kind_index >= 0 && n < first + 16 && n <= kMaxExtraWorkers; ++n) {
    ClusterSpec bigger = cluster;
    for (int64_t i = 0; i < n; ++i) {
      WorkerSpec extra = kind;
      extra.name = absl::StrCat(kind.group, "-extra-", i);
      bigger.workers.push_back(std::move(extra));
    }
    if (Fits(config, bigger)) {
      fixes.push_back(absl::StrFormat("%d more %g GiB workers (like %s)", n, kind.memory_gib, kind.name));
      result->fixes.push_back({.more_workers = n, .like_worker = kind_index});
      break;
    }
  }
  const ServingSpec& serving = cluster.serving;
  auto largest_context = [&](const ServingSpec& base) {
    const int64_t c = LargestFitting(base.max_context, [&](int64_t context) {
      ServingSpec t = base;
      t.max_context = context;
      return Fits(config, WithServing(cluster, t));
    });
    return c >= 1024 ? c / 1024 * 1024 : c;  // a round figure, still fitting (monotone)
  };
  bool int8_alone = false;
  ServingSpec int8 = serving;
  int8.expert_dtype = "int8";
  if (!serving.int8_experts()) {
    int8_alone = Fits(config, WithServing(cluster, int8));
    if (int8_alone) {
      fixes.push_back("expert_dtype int8");
      result->fixes.push_back({.int8_experts = true});
    }
  }
  const int64_t context = largest_context(serving);
  if (context > 0) {
    fixes.push_back(absl::StrCat("max_context ", context));
    result->fixes.push_back({.max_context = context});
  }
  const int64_t sequences = LargestFitting(serving.max_sequences, [&](int64_t n) {
    ServingSpec t = serving;
    t.max_sequences = static_cast<int>(n);
    return Fits(config, WithServing(cluster, t));
  });
  if (sequences > 0) {
    fixes.push_back(absl::StrCat("max_sequences ", sequences));
    result->fixes.push_back({.max_sequences = static_cast<int>(sequences)});
  }
  // MiniMax's own design point (8-bit weights on 8 x 80 GB) needs both changes at once.
  if (!serving.int8_experts() && !int8_alone && context == 0) {
    if (const int64_t both = largest_context(int8); both > 0) {
      fixes.push_back(absl::StrCat("expert_dtype int8 with max_context ", both));
      result->fixes.push_back({.int8_experts = true, .max_context = both});
    }
  }
  result->shortfall = absl::StrCat(
      what, "; ",
      fixes.empty() ? "no single change fixes it (tried more workers, int8 experts, a shorter context, fewer "
                      "sequences): combine them"
                    : absl::StrCat("smallest fix: ", absl::StrJoin(fixes, " or ")));
}

}  // namespace

std::string FormatGiB(int64_t bytes) { return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / kGiB); }

bool Fits(const model::ModelConfig& config, const ClusterSpec& cluster) {
  const CostModel cost(ComputeModelSizes(config), cluster);
  return Search(cost, /*first_only=*/true).has_value();
}

PlanResult Plan(const model::ModelConfig& config, const ClusterSpec& cluster, const std::string& model_dir,
                const PlanOptions& options) {
  const CostModel cost(ComputeModelSizes(config), cluster);
  PlanResult result;
  std::optional<Candidate> best = Search(cost, /*first_only=*/false);
  if (!best) {
    DescribeShortfall(config, cost, &result);
    return result;
  }
  if (options.replicas) AddReplicas(cost, &best->layout);
  Prediction prediction = cost.Predict(best->layout);
  result.one_group_tokens_per_s = prediction.tokens_per_s;
  // Attention groups: worth it where the stages fit several times over and the groups' tokens/s
  // beat one group's by more than 5% (the same workers, so the same price).
  const int most_groups = std::min({kMaxAttentionGroups, cluster.serving.max_sequences,
                                    static_cast<int>(cluster.workers.size())});
  for (int groups = 2; options.groups && groups <= most_groups; ++groups) {
    std::optional<Candidate> grouped = Search(cost, /*first_only=*/false, groups);
    if (!grouped) continue;
    if (options.replicas) AddReplicas(cost, &grouped->layout);
    Prediction p = cost.Predict(grouped->layout);
    if (!p.fits() || p.tokens_per_s <= prediction.tokens_per_s * 1.05) continue;
    best = std::move(grouped);
    prediction = std::move(p);
  }
  result.fits = true;
  result.layout = std::move(best->layout);
  result.num_stages = best->num_stages;
  result.num_groups = result.layout.num_groups;
  result.prediction = std::move(prediction);
  result.shard = ShardConfigFromLayout(result.layout, cluster, model_dir, cluster.serving.expert_dtype);
  result.shard.steps_in_flight = result.prediction.served.steps;
  return result;
}

}  // namespace mmx::plan
