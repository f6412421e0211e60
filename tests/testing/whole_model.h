// The whole model held by one worker's shard: what tests that exercise a StageCompute on every
// piece load, through the one weight loader (worker/loaded_shard.h).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "base/status_macros.h"
#include "model/checkpoint.h"
#include "plan/shard_config.h"
#include "worker/loaded_shard.h"

namespace mmx::testing {

inline absl::StatusOr<std::unique_ptr<worker::LoadedShard>> LoadWholeModel(
    const std::string& dir, model::ExpertDType expert_dtype = model::ExpertDType::kBf16) {
  MMX_ASSIGN_OR_RETURN(model::ModelConfig config, model::ModelConfig::FromFile(dir));
  const plan::ShardConfig shard = plan::WholeModelShardConfig(dir, "whole", "cpu", config);
  return worker::LoadShard(dir, shard.workers[0], expert_dtype, nullptr);
}

}  // namespace mmx::testing
