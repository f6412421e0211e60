// The rule that picks, for each (layer, expert) pair held by several workers, the one replica the
// runtime sends that pair's tokens to. The coordinator applies it to build its peer table and
// the planner applies it to predict load, so it lives here, once.
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
