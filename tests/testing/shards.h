// Shard configs the tests start clusters with.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"

namespace mmx::testing {

// One worker holding the whole golden-sized model (8 layers, 8 experts), `model:` as given.
inline std::string OneWorkerShard(const std::string& model_dir, const std::string& name = "all",
                                  const std::string& device = "cpu") {
  return absl::StrCat("model: ", model_dir, "\nworkers:\n  - {name: ", name, ", device: ", device,
                      ", embedding: true, attention: [0, 8], lm_head: true, experts: [{layers: [0, 8], ids: all}]}\n");
}

// Two attention stages (the second holds lm_head) and two expert hosts with overlapping
// replicas: experts 0-2 only on experts-a, 5-7 only on experts-b.
inline std::string DisaggregatedShard(const std::string& model_dir) {
  return absl::StrCat("model: ", model_dir, R"(
workers:
  - {name: stage0, embedding: true, attention: [0, 4]}
  - {name: stage1, attention: [4, 8], lm_head: true}
  - {name: experts-a, experts: [{layers: [0, 8], ids: [0, 1, 2, 3, 4]}]}
  - {name: experts-b, experts: [{layers: [0, 8], ids: [3, 4, 5, 6, 7]}]}
)");
}

// The same stages; experts-a holds every expert, so each of experts-b's is held elsewhere.
inline std::string ReplicatedExpertsShard(const std::string& model_dir) {
  return absl::StrCat("model: ", model_dir, R"(
workers:
  - {name: stage0, embedding: true, attention: [0, 4]}
  - {name: stage1, attention: [4, 8], lm_head: true}
  - {name: experts-a, experts: [{layers: [0, 8], ids: all}]}
  - {name: experts-b, experts: [{layers: [0, 8], ids: [4, 5, 6, 7]}]}
)");
}

// One stage with the whole attention and experts 0-3, and two expert hosts that both hold 4-7
// (every expert of either host is held by the other).
inline std::string StageAndTwinHostsShard(const std::string& model_dir) {
  return absl::StrCat("model: ", model_dir, R"(
workers:
  - {name: stage, embedding: true, attention: [0, 8], lm_head: true, experts: [{layers: [0, 8], ids: [0, 1, 2, 3]}]}
  - {name: a, experts: [{layers: [0, 8], ids: [4, 5, 6, 7]}]}
  - {name: b, experts: [{layers: [0, 8], ids: [4, 5, 6, 7]}]}
)");
}

// Two attention groups, each a whole attention stack with its own embedding and lm_head, sharing
// two expert hosts with overlapping replicas (experts 0-2 only on experts-a, 5-7 only on experts-b).
inline std::string TwoGroupsShard(const std::string& model_dir) {
  return absl::StrCat("model: ", model_dir, R"(
workers:
  - {name: group-a, group: a, embedding: true, attention: [0, 8], lm_head: true}
  - {name: group-b, group: b, embedding: true, attention: [0, 8], lm_head: true}
  - {name: experts-a, experts: [{layers: [0, 8], ids: [0, 1, 2, 3, 4]}]}
  - {name: experts-b, experts: [{layers: [0, 8], ids: [3, 4, 5, 6, 7]}]}
)");
}

}  // namespace mmx::testing
