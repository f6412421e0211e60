// --prompt-ids as typed on a command line: "5,17,42".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mmx::tools {

// "5,17,42" -> {5, 17, 42}. InvalidArgument naming the bad item, or saying the prompt is empty.
absl::StatusOr<std::vector<int32_t>> ParsePromptIds(const std::string& text);

}  // namespace mmx::tools
