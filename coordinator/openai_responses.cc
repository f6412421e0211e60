#include "coordinator/openai_responses.h"

#include "absl/strings/str_cat.h"
#include "coordinator/openai_requests.h"

namespace mmx::coordinator {
namespace {

using Json = nlohmann::json;

// Characters (code points) in UTF-8 text: OpenAI's text offsets count characters.
int64_t CodePoints(const std::string& text) {
  int64_t n = 0;
  for (const char c : text) n += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
  return n;
}

// Replaces bytes that are not UTF-8 rather than throwing: an error message may quote a client's
// string cut short.
std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json Bytes(const std::string& text) {
  Json bytes = Json::array();
  for (const char c : text) bytes.push_back(static_cast<unsigned char>(c));
  return bytes;
}

}  // namespace

std::string OpenAiResponder::TokenString(int32_t id) const {
  if (s_.tokenizer == nullptr) return absl::StrCat("token_id:", id);
  return s_.tokenizer->Decode({id});
}

Json OpenAiResponder::Envelope(bool chunk) const {
  Json j = Json::object();
  j["id"] = s_.id;
  j["object"] = s_.chat ? (chunk ? "chat.completion.chunk" : "chat.completion") : "text_completion";
  j["created"] = s_.created;
  j["model"] = s_.model;
  return j;
}

// Chat: {"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}. Completions:
// {"tokens", "token_logprobs", "top_logprobs": [{token: logprob}], "text_offset"}.
Json OpenAiResponder::Logprobs(const std::vector<TokenEvent>& tokens) {
  if (s_.chat) {
    Json content = Json::array();
    for (const TokenEvent& t : tokens) {
      const std::string token = TokenString(t.token_id);
      Json top = Json::array();
      for (size_t k = 0; k < t.top_ids.size(); ++k) {
        const std::string alt = TokenString(t.top_ids[k]);
        top.push_back({{"token", alt}, {"logprob", t.top_logprobs[k]}, {"bytes", Bytes(alt)}});
      }
      content.push_back({{"token", token}, {"logprob", t.logprob}, {"bytes", Bytes(token)}, {"top_logprobs", top}});
    }
    return {{"content", content}};
  }
  Json strings = Json::array(), logprobs = Json::array(), tops = Json::array(), offsets = Json::array();
  auto add = [&](int32_t id, const TokenEvent* scored) {
    const std::string token = TokenString(id);
    strings.push_back(token);
    offsets.push_back(text_offset_);
    text_offset_ += CodePoints(token);
    if (scored == nullptr) {  // the prompt's first token: nothing before it to predict it
      logprobs.push_back(nullptr);
      tops.push_back(nullptr);
      return;
    }
    logprobs.push_back(scored->logprob);
    Json top = Json::object();
    for (size_t k = 0; k < scored->top_ids.size(); ++k) top[TokenString(scored->top_ids[k])] = scored->top_logprobs[k];
    tops.push_back(top);
  };
  if (echo_) {
    for (size_t i = 0; i < echo_->ids.size(); ++i) {
      add(echo_->ids[i], i == 0 || i > echo_->scored.size() ? nullptr : &echo_->scored[i - 1]);
    }
  }
  for (const TokenEvent& t : tokens) add(t.token_id, &t);
  return {{"tokens", strings}, {"token_logprobs", logprobs}, {"top_logprobs", tops}, {"text_offset", offsets}};
}

Json OpenAiResponder::Choice(const std::string& text, const std::vector<TokenEvent>& tokens, bool delta) {
  Json choice = {{"index", 0}};
  if (!s_.chat) {
    choice["text"] = echo_ ? echo_->text + text : text;
  } else if (delta) {
    choice["delta"] = {{"content", text}};
  } else {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  }
  choice["logprobs"] = s_.logprobs ? Logprobs(tokens) : Json(nullptr);
  choice["finish_reason"] = nullptr;
  echo_.reset();  // sent
  return choice;
}

void OpenAiResponder::Echo(std::string prompt_text, std::vector<int32_t> prompt_ids, std::vector<TokenEvent> scored) {
  echo_ = Echoed{std::move(prompt_text), std::move(prompt_ids), std::move(scored)};
}

std::string OpenAiResponder::RoleChunk() const {
  if (!s_.chat) return "";
  Json j = Envelope(true);
  j["choices"] = Json::array({{{"index", 0}, {"delta", {{"role", "assistant"}, {"content", ""}}},
                               {"logprobs", nullptr}, {"finish_reason", nullptr}}});
  if (s_.include_usage) j["usage"] = nullptr;
  return Dump(j);
}

std::string OpenAiResponder::DeltaChunk(const std::vector<TokenEvent>& tokens) {
  std::string text;
  for (const TokenEvent& t : tokens) text += t.text;
  Json j = Envelope(true);
  j["choices"] = Json::array({Choice(text, tokens, /*delta=*/true)});
  if (s_.include_usage) j["usage"] = nullptr;
  return Dump(j);
}

std::string OpenAiResponder::FinishChunk(const std::string& finish_reason) const {
  Json j = Envelope(true);
  Json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason}};
  if (s_.chat) {
    choice["delta"] = Json::object();
  } else {
    choice["text"] = "";
  }
  j["choices"] = Json::array({choice});
  if (s_.include_usage) j["usage"] = nullptr;
  return Dump(j);
}

std::string OpenAiResponder::UsageChunk(int64_t prompt_tokens, int64_t completion_tokens) const {
  Json j = Envelope(true);
  j["choices"] = Json::array();
  j["usage"] = OpenAiUsage(prompt_tokens, completion_tokens);
  return Dump(j);
}

std::string OpenAiResponder::Whole(const std::vector<TokenEvent>& tokens, const std::string& finish_reason,
                                   int64_t prompt_tokens, int64_t completion_tokens) {
  std::string text;
  for (const TokenEvent& t : tokens) text += t.text;
  Json choice = Choice(text, tokens, /*delta=*/false);
  choice["finish_reason"] = finish_reason;
  Json j = Envelope(false);
  j["choices"] = Json::array({choice});
  j["usage"] = OpenAiUsage(prompt_tokens, completion_tokens);
  return Dump(j);
}

Json OpenAiUsage(int64_t prompt_tokens, int64_t completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

int HttpStatusOf(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kOutOfRange: return 400;
    case absl::StatusCode::kUnauthenticated: return 401;
    case absl::StatusCode::kPermissionDenied: return 403;
    case absl::StatusCode::kNotFound: return 404;
    case absl::StatusCode::kResourceExhausted: return 429;
    case absl::StatusCode::kUnavailable: return 503;
    case absl::StatusCode::kDeadlineExceeded: return 504;
    default: return 500;
  }
}

std::string OpenAiErrorBody(const absl::Status& status) {
  const int http = HttpStatusOf(status.code());
  std::string type = "invalid_request_error", code;
  if (http == 401) code = "invalid_api_key";
  const std::string param = OpenAiParamOf(status);
  if (http == 404) code = param == "model" ? "model_not_found" : "not_found";
  if (http == 429) type = "rate_limit_error", code = "rate_limit_exceeded";
  if (http >= 500) type = "server_error", code = http == 503 ? "service_unavailable" : "internal_error";
  Json error = {{"message", std::string(status.message())},
                {"type", type},
                {"param", param.empty() ? Json(nullptr) : Json(param)},
                {"code", code.empty() ? Json(nullptr) : Json(code)}};
  return Dump(Json{{"error", error}});
}

}  // namespace mmx::coordinator
