// Expert placement: which workers hold which (layer, expert) pairs, given the attention stages.
//
// PlaceExperts gives each worker a quota of pairs in proportion to its speed as an expert host
// (the inverse of CostModel::ExpertSeconds: memory bandwidth for decode, its NIC for the rows),
// capped by the memory it has left; then deals the pairs so that every worker holds floor or
// ceil of quota / L experts in every layer. With uniform routing every layer costs the same, so
// spreading each host's quota evenly over layers keeps the slowest host of every layer as fast
// as the quotas allow.
//
// AddReplicas spends the memory left after that on extra copies, spread evenly over layers,
// fewest-copies first, and keeps a worker's copies only if the predicted step is no slower
// under the runtime's routing rule (Layout::ActiveOwners). Copies that the runtime does not
// route to still serve as standbys if their primary's worker fails.
#pragma once

#include "plan/cost_model.h"
#include "plan/layout.h"

namespace mmx::plan {

// Fills `layout`'s expert holdings (which must be empty) on every worker with room. False when
// the workers' free memory cannot hold every pair once; `layout` is then unspecified.
bool PlaceExperts(const CostModel& cost, Layout* layout);

// Adds replicas into spare memory; never makes the predicted decode step slower.
void AddReplicas(const CostModel& cost, Layout* layout);

}  // namespace mmx::plan
