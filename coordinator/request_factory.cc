#include "coordinator/request_factory.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::coordinator {
namespace {

absl::Status Invalid(const std::string& message) { return absl::InvalidArgumentError(message); }

// A client's string inside an error message, cut short: errors stay a line, whatever was sent.
std::string Quoted(const std::string& text) {
  constexpr size_t kMaxEcho = 40;
  return text.size() <= kMaxEcho ? absl::StrCat("'", text, "'")
                                 : absl::StrCat("'", text.substr(0, kMaxEcho), "...' (", text.size(), " bytes)");
}

}  // namespace

std::vector<int64_t> RequestFactory::DefaultStopIds() const {
  if (!config_.eos_token_ids.empty()) return config_.eos_token_ids;
  if (tokenizer_) {
    if (std::optional<int32_t> eos = tokenizer_->TokenToId("<end_of_sentence>"); eos && *eos < config_.vocab_size) {
      return {*eos};
    }
  }
  return model::DefaultEosIds(config_);
}

absl::StatusOr<Request::Params> RequestFactory::Validate(const v1::GenerateRequest& request) const {
  const int given = (request.prompt_token_ids_size() > 0) + (!request.prompt().empty()) + (request.messages_size() > 0);
  if (given == 0) {
    return Invalid("the prompt is empty: give one of prompt (text), messages (chat) or prompt_token_ids");
  }
  if (given > 1) return Invalid("give only one of prompt, messages and prompt_token_ids");
  const bool text_input = request.prompt_token_ids_size() == 0;
  const v1::SamplingParams& s = request.sampling();
  if ((text_input || s.stop_size() > 0) && tokenizer_ == nullptr) {
    return absl::FailedPreconditionError(
        "this checkpoint has no tokenizer.json, so text prompts, messages and stop strings cannot be used; "
        "send prompt_token_ids");
  }

  Request::Params p;
  if (request.prompt_token_ids_size() > 0) {
    p.prompt.assign(request.prompt_token_ids().begin(), request.prompt_token_ids().end());
  } else if (!request.prompt().empty()) {
    MMX_ASSIGN_OR_RETURN(p.prompt, tokenizer_->Encode(request.prompt(), /*add_special_tokens=*/true));
  } else {
    std::vector<tokenizer::ChatMessage> messages;
    for (int i = 0; i < request.messages_size(); ++i) {
      const v1::ChatMessage& m = request.messages(i);
      if (m.role() != "system" && m.role() != "user" && m.role() != "assistant") {
        return Invalid(absl::StrCat("messages[", i, "].role is ", Quoted(m.role()), "; use system, user or assistant"));
      }
      messages.push_back({m.role(), m.content()});
    }
    // The chat layout places its own special tokens; message text is data (a user cannot forge a
    // turn by writing <end_of_sentence>), and nothing else is added.
    absl::StatusOr<std::vector<int32_t>> ids =
        tokenizer::EncodeMiniMaxChat(*tokenizer_, messages, /*add_generation_prompt=*/true);
    if (!ids.ok()) return Invalid(absl::StrCat("messages: ", ids.status().message()));
    p.prompt = *std::move(ids);
  }
  if (p.prompt.empty()) return Invalid("the prompt encodes to no tokens; give some text");
  if (static_cast<int>(p.prompt.size()) > limits_.max_prompt_tokens) {
    return Invalid(absl::StrCat("the prompt has ", p.prompt.size(), " tokens; this server accepts at most ",
                                limits_.max_prompt_tokens, " (--max-prompt-tokens)"));
  }
  if (s.max_tokens() < 1) return Invalid(absl::StrCat("sampling.max_tokens must be >= 1, got ", s.max_tokens()));
  if (s.max_tokens() > limits_.max_tokens) {
    return Invalid(absl::StrCat("sampling.max_tokens is ", s.max_tokens(), "; this server allows at most ",
                                limits_.max_tokens, " (--max-tokens)"));
  }
  p.sampling.temperature = s.temperature();
  p.sampling.top_p = s.has_top_p() ? s.top_p() : 1.f;
  p.sampling.top_k = s.top_k();
  if (s.top_k() > config_.vocab_size) {
    return Invalid(absl::StrCat("sampling.top_k is ", s.top_k(), "; at most the vocabulary's ", config_.vocab_size,
                                " (0 turns it off)"));
  }
  p.sampling.seed = s.seed();
  if (absl::Status st = model::ValidateSamplingParams(p.sampling); !st.ok()) {
    return Invalid(absl::StrCat("sampling.", st.message()));
  }
  if (s.logprobs() < 0 || s.logprobs() > 20) {
    return Invalid(absl::StrCat("sampling.logprobs must be in [0, 20], got ", s.logprobs()));
  }
  if (s.has_prompt_logprobs() && (s.prompt_logprobs() < 0 || s.prompt_logprobs() > 20)) {
    return Invalid(absl::StrCat("sampling.prompt_logprobs must be in [0, 20], got ", s.prompt_logprobs()));
  }
  if (s.stop_size() > kMaxStopStrings) {
    return Invalid(absl::StrCat("sampling.stop has ", s.stop_size(), " strings; at most ", kMaxStopStrings));
  }
  for (int i = 0; i < s.stop_size(); ++i) {
    if (s.stop(i).empty() || s.stop(i).size() > kMaxStopStringBytes) {
      return Invalid(absl::StrCat("sampling.stop[", i, "] must be 1 to ", kMaxStopStringBytes, " bytes, got ",
                                  s.stop(i).size()));
    }
  }
  if (s.stop_token_ids_size() > kMaxStopTokenIds) {
    return Invalid(absl::StrCat("sampling.stop_token_ids has ", s.stop_token_ids_size(), " ids; at most ",
                                kMaxStopTokenIds));
  }
  for (int i = 0; i < s.stop_token_ids_size(); ++i) {
    if (s.stop_token_ids(i) < 0 || s.stop_token_ids(i) >= config_.vocab_size) {
      return Invalid(absl::StrCat("sampling.stop_token_ids[", i, "] = ", s.stop_token_ids(i),
                                  " is outside the vocabulary [0, ", config_.vocab_size, ")"));
    }
  }
  p.max_tokens = s.max_tokens();
  p.logprobs = s.logprobs();
  p.prompt_logprobs = s.has_prompt_logprobs() ? s.prompt_logprobs() : -1;
  for (int32_t id : p.prompt) {
    if (id < 0 || id >= config_.vocab_size) {
      return Invalid(absl::StrCat("token id ", id, " is outside the vocabulary [0, ", config_.vocab_size, ")"));
    }
  }
  if (!s.ignore_eos()) p.stop_ids = DefaultStopIds();
  for (int32_t id : s.stop_token_ids()) p.stop_ids.push_back(id);
  p.stop_strings.assign(s.stop().begin(), s.stop().end());
  return p;
}

absl::StatusOr<std::shared_ptr<Request>> RequestFactory::Make(const v1::GenerateRequest& request,
                                                             const std::string& source) {
  absl::StatusOr<Request::Params> params = Validate(request);
  if (!params.ok()) return params.status();
  params->source = source;
  std::unique_ptr<TextStream> text;
  if (tokenizer_) text = std::make_unique<TextStream>(*tokenizer_, params->stop_strings);
  return std::make_shared<Request>(next_id_++, *std::move(params), std::move(text));
}

}  // namespace mmx::coordinator
