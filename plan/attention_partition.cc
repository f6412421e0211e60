#include "plan/attention_partition.h"

#include <algorithm>

namespace mmx::plan {
namespace {

struct StageCosts {
  std::vector<std::vector<double>> layer_s;  // [stage][layer] decode seconds
  std::vector<double> fixed_s;               // lm_head on the last stage
  std::vector<int64_t> fixed_bytes;          // workspace, embedding, tail
  std::vector<int64_t> budget;               // usable bytes
};

// The greedy split under time bound `bound` (infinite: memory only).
std::optional<std::vector<LayerRange>> Greedy(const StageCosts& c, const std::vector<int64_t>& layer_bytes,
                                              double bound) {
  const int L = static_cast<int>(layer_bytes.size());
  const int k = static_cast<int>(c.budget.size());
  std::vector<LayerRange> ranges;
  int l = 0;
  for (int i = 0; i < k; ++i) {
    const int begin = l;
    double seconds = c.fixed_s[i];
    int64_t bytes = c.fixed_bytes[i];
    const int last_allowed = (i == k - 1) ? L : L - (k - 1 - i);  // leave one layer per later stage
    while (l < last_allowed && seconds + c.layer_s[i][l] <= bound && bytes + layer_bytes[l] <= c.budget[i]) {
      seconds += c.layer_s[i][l];
      bytes += layer_bytes[l];
      ++l;
    }
    if (l == begin || bytes > c.budget[i]) return std::nullopt;
    ranges.push_back({begin, l});
  }
  if (l != L) return std::nullopt;
  return ranges;
}

}  // namespace

std::optional<std::vector<LayerRange>> PartitionLayers(const CostModel& cost, const std::vector<int>& stages,
                                                       int64_t sequences) {
  const int L = cost.sizes().num_layers;
  const int k = static_cast<int>(stages.size());
  if (k == 0 || k > L) return std::nullopt;
  std::vector<int64_t> layer_bytes(L);
  for (int l = 0; l < L; ++l) layer_bytes[l] = cost.StageLayerMemory(l, sequences);
  StageCosts c;
  c.layer_s.assign(k, std::vector<double>(L));
  c.fixed_s.assign(k, 0);
  c.fixed_bytes.assign(k, cost.StageWorkspaceBytes(sequences));
  c.budget.resize(k);
  double hi = 0;
  for (int i = 0; i < k; ++i) {
    double all = 0;
    for (int l = 0; l < L; ++l) all += c.layer_s[i][l] = cost.AttentionLayerSeconds(stages[i], l);
    c.budget[i] = cost.UsableBytes(stages[i]);
    hi = std::max(hi, all);
  }
  c.fixed_bytes[0] += cost.sizes().EmbeddingBytes();
  c.fixed_bytes[k - 1] += cost.sizes().TailBytes() + cost.TailWorkspaceBytes(sequences);
  c.fixed_s[k - 1] = cost.TailSeconds(stages[k - 1]);
  hi += c.fixed_s[k - 1];

  // Feasible at all (memory)? Then bisect the time bound down to the smallest feasible one.
  std::optional<std::vector<LayerRange>> best = Greedy(c, layer_bytes, hi * 2 + 1);
  if (!best) return std::nullopt;
  double lo = 0;
  for (int iter = 0; iter < 60 && hi - lo > hi * 1e-9; ++iter) {
    const double mid = (lo + hi) / 2;
    if (auto ranges = Greedy(c, layer_bytes, mid)) {
      best = std::move(ranges);
      hi = mid;
    } else {
      lo = mid;
    }
  }
  return best;
}

}  // namespace mmx::plan
