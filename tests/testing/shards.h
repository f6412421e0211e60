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

}  // namespace mmx::testing
