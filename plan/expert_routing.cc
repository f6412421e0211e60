#include "plan/expert_routing.h"

#include <cstdint>

namespace mmx::plan {

std::vector<int> RouteExperts(int num_workers, int num_layers, int num_experts,
                              const std::function<bool(int, int, int)>& holds,
                              const std::function<int(int)>& attention_owner) {
  std::vector<int> owners(static_cast<size_t>(num_layers) * num_experts, -1);
  std::vector<int64_t> load(num_workers, 0);
  for (int l = 0; l < num_layers; ++l) {
    const int stage = attention_owner(l);
    for (int e = 0; e < num_experts; ++e) {
      int best = -1;
      for (int w = 0; w < num_workers; ++w) {
        if (!holds(w, l, e)) continue;
        if (best < 0) {
          best = w;
          continue;
        }
        const bool colocated = w == stage, best_colocated = best == stage;
        if ((colocated && !best_colocated) || (colocated == best_colocated && load[w] < load[best])) best = w;
      }
      if (best >= 0) {
        owners[static_cast<size_t>(l) * num_experts + e] = best;
        ++load[best];
      }
    }
  }
  return owners;
}

}  // namespace mmx::plan
