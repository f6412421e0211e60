// FormatMiniMaxChat (declared in tokenizer.h): MODEL.md §8's chat layout for MiniMax-Text-01.
// The role headers are fixed strings, not a Jinja template: Text-01's layout has no
// conditionals beyond the role, and an engine without a Jinja interpreter should still chat.
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "base/status_macros.h"
#include "model/tokenizer/tokenizer.h"

namespace mmx::tokenizer {
namespace {

constexpr absl::string_view kBeginTurn = "<beginning_of_sentence>";
constexpr absl::string_view kEndTurn = "<end_of_sentence>\n";
constexpr absl::string_view kAssistantHeader = "ai name=assistant\n";

absl::StatusOr<absl::string_view> Header(const ChatMessage& message, size_t index) {
  if (message.role == "system") return absl::string_view("system ai_setting=assistant\n");
  if (message.role == "user") return absl::string_view("user name=user\n");
  if (message.role == "assistant") return kAssistantHeader;
  return absl::InvalidArgumentError(absl::StrCat("messages[", index, "]: unknown role \"", message.role,
                                                 "\" (expected system, user or assistant)"));
}

}  // namespace

absl::StatusOr<std::vector<int32_t>> EncodeMiniMaxChat(const Tokenizer& tokenizer,
                                                       const std::vector<ChatMessage>& messages,
                                                       bool add_generation_prompt) {
  const std::optional<int32_t> begin = tokenizer.TokenToId("<beginning_of_sentence>");
  const std::optional<int32_t> end = tokenizer.TokenToId("<end_of_sentence>");
  if (!begin || !end) {
    return absl::FailedPreconditionError(
        "the tokenizer has no <beginning_of_sentence> / <end_of_sentence> tokens: not MiniMax-Text-01's chat layout");
  }
  std::vector<int32_t> ids;
  auto append = [&](std::string_view text) -> absl::Status {
    MMX_ASSIGN_OR_RETURN(const std::vector<int32_t> more, tokenizer.EncodeLiteral(text));
    ids.insert(ids.end(), more.begin(), more.end());
    return absl::OkStatus();
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    absl::StatusOr<absl::string_view> header = Header(messages[i], i);
    if (!header.ok()) return header.status();
    ids.push_back(*begin);
    MMX_RETURN_IF_ERROR(append(absl::StrCat(*header, messages[i].content)));
    ids.push_back(*end);
    MMX_RETURN_IF_ERROR(append("\n"));
  }
  if (add_generation_prompt) {
    ids.push_back(*begin);
    MMX_RETURN_IF_ERROR(append(std::string(kAssistantHeader)));
  }
  return ids;
}

absl::StatusOr<std::string> FormatMiniMaxChat(const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    absl::StatusOr<absl::string_view> header = Header(messages[i], i);
    if (!header.ok()) return header.status();
    absl::StrAppend(&out, kBeginTurn, *header, messages[i].content, kEndTurn);
  }
  if (add_generation_prompt) absl::StrAppend(&out, kBeginTurn, kAssistantHeader);
  return out;
}

}  // namespace mmx::tokenizer
