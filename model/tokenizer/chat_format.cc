// FormatMiniMaxChat (declared in tokenizer.h): MODEL.md §8's chat layout for MiniMax-Text-01.
// The role headers are fixed strings, not a Jinja template: Text-01's layout has no
// conditionals beyond the role, and an engine without a Jinja interpreter should still chat.
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "model/tokenizer/tokenizer.h"

namespace mmx::tokenizer {
namespace {

constexpr absl::string_view kBeginTurn = "<beginning_of_sentence>";
constexpr absl::string_view kEndTurn = "<end_of_sentence>\n";
constexpr absl::string_view kAssistantHeader = "ai name=assistant\n";

}  // namespace

absl::StatusOr<std::string> FormatMiniMaxChat(const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt) {
  std::string out;
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& message = messages[i];
    absl::string_view header;
    if (message.role == "system") {
      header = "system ai_setting=assistant\n";
    } else if (message.role == "user") {
      header = "user name=user\n";
    } else if (message.role == "assistant") {
      header = kAssistantHeader;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("messages[", i, "]: unknown role \"",
                                                     message.role,
                                                     "\" (expected system, user or assistant)"));
    }
    absl::StrAppend(&out, kBeginTurn, header, message.content, kEndTurn);
  }
  if (add_generation_prompt) absl::StrAppend(&out, kBeginTurn, kAssistantHeader);
  return out;
}

}  // namespace mmx::tokenizer
