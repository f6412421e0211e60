#include "tools/prompt_ids.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace mmx::tools {

absl::StatusOr<std::vector<int32_t>> ParsePromptIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::string s(absl::StripAsciiWhitespace(item));
    if (s.empty()) {
      if (text.find_first_not_of(" \t") == std::string::npos) break;  // empty prompt
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt-ids: empty item in '", text, "'; write ids like 5,17,42"));
    }
    int32_t id;
    if (!absl::SimpleAtoi(s, &id)) {
      return absl::InvalidArgumentError(absl::StrCat("--prompt-ids: '", s, "' is not an integer token id"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) {
    return absl::InvalidArgumentError("--prompt-ids: the prompt is empty; give at least one token id");
  }
  return ids;
}

}  // namespace mmx::tools
