// The weight bytes one shard-config entry holds, from the model's sizes: what a worker taking
// the entry over (a standby after a failover) must have room for, besides sequence state.
#pragma once

#include <cstdint>

#include "plan/model_sizes.h"
#include "plan/shard_config.h"

namespace mmx::plan {

int64_t ShardWeightBytes(const ModelSizes& sizes, const WorkerShard& worker, bool int8_experts);

}  // namespace mmx::plan
