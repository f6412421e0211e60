// Debian 12's Abseil is built with its own absl::string_view (ABSL_OPTION_USE_STD_STRING_VIEW
// is 0), which does not convert from std::string_view. The tokenizer's API speaks
// std::string_view; this is the one bridge to StrCat and to Abseil's heterogeneous lookups.
#pragma once

#include <string_view>

#include "absl/strings/string_view.h"

namespace mmx::tokenizer {

inline absl::string_view AsAbsl(std::string_view s) {
  return absl::string_view(s.data(), s.size());
}

}  // namespace mmx::tokenizer
