// The rule the planner uses to predict load: for each (layer, expert) pair held by several
// workers, the one replica its tokens are assumed to go to. The runtime does better (a stage
// picks among the holders per layer and step by the tokens it routes: worker/routes.h), so the
// prediction is for the static worst case of balance.
//
// Rule: a holder co-located with the layer's attention stage wins (no network hop); otherwise
// the holder with the fewest pairs routed to it so far; ties go to the lower worker index.
// Replicas therefore spread load across pairs, never within one pair.
#pragma once

#include <functional>
#include <vector>

namespace mmx::plan {

// holds(w, l, e): worker w holds expert e of layer l. attention_owner(l): the worker running
// layer l's attention, or -1. Returns [L * E] worker indices, -1 where nobody holds the pair.
std::vector<int> RouteExperts(int num_workers, int num_layers, int num_experts,
                              const std::function<bool(int, int, int)>& holds,
                              const std::function<int(int)>& attention_owner);

}  // namespace mmx::plan
