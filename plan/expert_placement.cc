#include "plan/expert_placement.h"

#include <algorithm>
#include <numeric>

namespace mmx::plan {
namespace {

// Workers in order of expert speed (fastest first), ties in spec order.
std::vector<int> BySpeed(const std::vector<double>& seconds) {
  std::vector<int> order(seconds.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return seconds[a] < seconds[b]; });
  return order;
}

// The most pairs a worker with `free_bytes` left can hold, its host workspace included. Dealing
// gives at most ceil(n / L) per layer; the workspace is sized with one more to spare.
int64_t Capacity(const CostModel& cost, int64_t free_bytes, int64_t max_pairs) {
  const int L = cost.sizes().num_layers, E = cost.sizes().num_experts;
  const int64_t expert_bytes = cost.sizes().ExpertBytes(cost.int8());
  auto fits = [&](int64_t n) {
    const int64_t per_layer = std::min<int64_t>(E, (n + L - 1) / L + 1);
    return n * expert_bytes + cost.HostWorkspaceBytes(per_layer) <= free_bytes;
  };
  int64_t lo = 0, hi = max_pairs;  // fits(lo) holds
  if (!fits(1)) return 0;
  lo = 1;
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

// Integer quotas summing to `total`, in proportion to `speed` = 1 / seconds, each within its
// cap (water-filling: the fast fill up first only when the slow run out of room).
std::vector<int64_t> Quotas(const std::vector<int64_t>& cap, const std::vector<double>& seconds, int64_t total) {
  const size_t W = cap.size();
  auto share = [&](double lambda, size_t w) { return std::min(static_cast<double>(cap[w]), lambda / seconds[w]); };
  double lo = 0, hi = 1;
  auto sum = [&](double lambda) {
    double s = 0;
    for (size_t w = 0; w < W; ++w) s += share(lambda, w);
    return s;
  };
  while (sum(hi) < static_cast<double>(total) && hi < 1e300) hi *= 2;
  for (int iter = 0; iter < 200; ++iter) {
    const double mid = (lo + hi) / 2;
    (sum(mid) < static_cast<double>(total) ? lo : hi) = mid;
  }
  std::vector<int64_t> quota(W);
  std::vector<double> fraction(W);
  int64_t given = 0;
  for (size_t w = 0; w < W; ++w) {
    const double x = share(hi, w);
    quota[w] = std::min(cap[w], static_cast<int64_t>(x));
    fraction[w] = x - static_cast<double>(quota[w]);
    given += quota[w];
  }
  // Round: largest fraction first, then the faster worker, then spec order; repeat if needed.
  std::vector<int> order(W);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
    if (fraction[a] != fraction[b]) return fraction[a] > fraction[b];
    return seconds[a] < seconds[b];
  });
  while (given < total) {
    const int64_t before = given;
    for (int w : order) {
      if (given == total) break;
      if (quota[w] < cap[w]) {
        ++quota[w];
        ++given;
      }
    }
    if (given == before) break;  // no room anywhere (the caller checked the caps)
  }
  while (given > total) {  // bisection overshoot: take back from the slowest
    for (auto it = order.rbegin(); it != order.rend() && given > total; ++it) {
      if (quota[*it] > 0) {
        --quota[*it];
        --given;
      }
    }
  }
  return quota;
}

}  // namespace

bool PlaceExperts(const CostModel& cost, Layout* layout) {
  const int L = layout->num_layers, E = layout->num_experts;
  const int64_t pairs = int64_t{L} * E;
  const size_t W = layout->workers.size();
  const std::vector<WorkerMemory> memory = cost.Memory(*layout);
  std::vector<int64_t> cap(W);
  std::vector<double> seconds(W);
  int64_t room = 0;
  for (size_t w = 0; w < W; ++w) {
    cap[w] = Capacity(cost, memory[w].usable - memory[w].total(), pairs);
    seconds[w] = cost.ExpertSeconds(static_cast<int>(w));
    room += cap[w];
  }
  if (room < pairs) return false;
  const std::vector<int64_t> quota = Quotas(cap, seconds, pairs);

  // Deal the pairs in expert-major order (expert 0 of every layer, then expert 1, ...), a
  // contiguous run per worker in spec order. A run of quota q covers whole experts across all
  // layers plus at most two partial ones (the top layers of its first expert, the bottom layers
  // of its last), so the worker holds floor(q / L) or ceil(q / L) experts of every layer (its
  // share, spread evenly) and its shard config needs at most three blocks.
  int64_t next = 0;
  for (size_t w = 0; w < W; ++w) {
    for (int64_t i = 0; i < quota[w]; ++i, ++next) {
      const int e = static_cast<int>(next / L), l = static_cast<int>(next % L);
      layout->workers[w].experts[static_cast<size_t>(l) * E + e] = 1;
    }
  }
  return next == pairs;
}

void AddReplicas(const CostModel& cost, Layout* layout) {
  const int L = layout->num_layers, E = layout->num_experts;
  const size_t W = layout->workers.size();
  const int64_t expert_bytes = cost.sizes().ExpertBytes(cost.int8());
  std::vector<double> seconds(W);
  for (size_t w = 0; w < W; ++w) seconds[w] = cost.ExpertSeconds(static_cast<int>(w));

  for (int host : BySpeed(seconds)) {
    const WorkerMemory memory = cost.Memory(*layout)[host];
    const int64_t spare = memory.usable - memory.total();
    const int64_t held = layout->workers[host].NumExperts();
    int64_t want = std::min<int64_t>(spare / expert_bytes, int64_t{L} * E - held);
    if (want <= 0) continue;

    // The pairs this host could copy, best first: fewest copies, then expert-major order starting
    // just after the last pair it holds, so its copies form one run across all layers (spread
    // evenly, as uniform routing makes every pair equally hot) and other hosts copy other runs.
    const int64_t pairs = int64_t{L} * E;
    std::vector<int> copies(pairs, 0);
    int64_t start = 0;
    for (int64_t p = 0; p < pairs; ++p) {
      const size_t index = static_cast<size_t>(p % L) * E + static_cast<size_t>(p / L);
      for (const WorkerRoles& w : layout->workers) copies[p] += w.experts[index];
      if (layout->workers[host].experts[index]) start = p + 1;
    }
    std::vector<int64_t> candidates;
    for (int64_t i = 0; i < pairs; ++i) {
      const int64_t p = (start + i) % pairs;
      if (!layout->workers[host].experts[static_cast<size_t>(p % L) * E + static_cast<size_t>(p / L)]) {
        candidates.push_back(p);
      }
    }
    std::stable_sort(candidates.begin(), candidates.end(),
                     [&](int64_t a, int64_t b) { return copies[a] < copies[b]; });

    const double base = cost.DecodeStepSeconds(*layout);
    while (want > 0) {
      Layout trial = *layout;
      for (int64_t i = 0; i < want; ++i) {
        const int64_t p = candidates[i];
        trial.workers[host].experts[static_cast<size_t>(p % L) * E + static_cast<size_t>(p / L)] = 1;
      }
      const WorkerMemory after = cost.Memory(trial)[host];
      if (!after.fits()) {  // the larger host workspace did not fit: drop the overshoot
        want -= std::max<int64_t>(1, (after.total() - after.usable + expert_bytes - 1) / expert_bytes);
        continue;
      }
      if (cost.DecodeStepSeconds(trial) <= base * (1 + 1e-9)) {
        *layout = std::move(trial);
        break;
      }
      want /= 2;  // the runtime would route pairs to these copies and slow the step: try fewer
    }
  }
}

}  // namespace mmx::plan
