// PartitionLayers: cuts the model's layers into contiguous attention stages, one per chosen
// worker, so that the slowest stage is as fast as possible ("layers in proportion to speed")
// while each stage fits its memory. The first stage also holds embed_tokens, the last the final
// norm and lm_head, so their memory and (for the lm_head) time count against those stages.
//
// Greedy decides feasibility exactly for a fixed stage order (each stage takes the longest
// prefix that fits the time bound and its memory), and bisection on the time bound finds the
// smallest bound that is feasible. Deterministic.
#pragma once

#include <optional>
#include <vector>

#include "plan/cost_model.h"
#include "plan/shard_config.h"

namespace mmx::plan {

// Ranges for `stages` (cluster worker indices, in pipeline order), or nullopt when no split
// gives every stage at least one layer within its usable memory. `sequences`: those the stages
// hold state for (0: max_sequences; an attention group holds its share).
std::optional<std::vector<LayerRange>> PartitionLayers(const CostModel& cost, const std::vector<int>& stages,
                                                       int64_t sequences = 0);

}  // namespace mmx::plan
