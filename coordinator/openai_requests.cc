#include "coordinator/openai_requests.h"

#include <algorithm>
#include <limits>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace mmx::coordinator {
namespace {

using Json = nlohmann::json;

absl::Status Invalid(const std::string& param, const std::string& message) {
  absl::Status st = absl::InvalidArgumentError(message);
  if (!param.empty()) st.SetPayload(kOpenAiParamPayload, absl::Cord(param));
  return st;
}

absl::StatusOr<Json> ParseBody(std::string_view body) {
  try {
    Json json = Json::parse(body);
    if (!json.is_object()) return Invalid("", "the request body must be a JSON object");
    return json;
  } catch (const Json::exception& e) {  // parse_error, and out_of_range for numbers like 1E400
    return Invalid("", absl::StrCat("the request body is not valid JSON: ", e.what()));
  }
}

// The field, or null when absent (absent and null mean the same, as in OpenAI's API).
const Json& Field(const Json& body, const char* name) {
  static const Json kNull;
  const auto it = body.find(name);
  return it == body.end() ? kNull : *it;
}

absl::StatusOr<double> Number(const Json& body, const char* name, double fallback, double lo, double hi) {
  const Json& v = Field(body, name);
  if (v.is_null()) return fallback;
  if (!v.is_number()) return Invalid(name, absl::StrCat(name, " must be a number"));
  const double x = v.get<double>();
  if (!(x >= lo && x <= hi)) return Invalid(name, absl::StrCat(name, " must be in [", lo, ", ", hi, "], got ", x));
  return x;
}

absl::StatusOr<int64_t> Integer(const Json& body, const char* name, int64_t fallback, int64_t lo, int64_t hi) {
  const Json& v = Field(body, name);
  if (v.is_null()) return fallback;
  if (!v.is_number_integer()) return Invalid(name, absl::StrCat(name, " must be an integer"));
  if (v.is_number_unsigned() ? v.get<uint64_t>() > static_cast<uint64_t>(hi) : v.get<int64_t>() > hi) {
    return Invalid(name, absl::StrCat(name, " must be at most ", hi));
  }
  const int64_t x = v.is_number_unsigned() ? static_cast<int64_t>(v.get<uint64_t>()) : v.get<int64_t>();
  if (x < lo) return Invalid(name, absl::StrCat(name, " must be at least ", lo, ", got ", x));
  return x;
}

absl::StatusOr<bool> Bool(const Json& body, const char* name) {
  const Json& v = Field(body, name);
  if (v.is_null()) return false;
  if (!v.is_boolean()) return Invalid(name, absl::StrCat(name, " must be true or false"));
  return v.get<bool>();
}

// Fields whose meaning mmx does not implement: refused when they would change the output.
absl::Status RefuseUnsupported(const Json& body, bool chat) {
  for (const char* name : {"presence_penalty", "frequency_penalty"}) {
    const Json& v = Field(body, name);
    if (!v.is_null() && !(v.is_number() && v.get<double>() == 0.0)) {
      return Invalid(name, absl::StrCat(name, " is not supported by this server; leave it out or 0"));
    }
  }
  const Json& bias = Field(body, "logit_bias");
  if (!bias.is_null() && !(bias.is_object() && bias.empty())) {
    return Invalid("logit_bias", "logit_bias is not supported by this server; leave it out");
  }
  for (const char* name : {"tools", "functions", "tool_choice", "function_call", "response_format"}) {
    if (!Field(body, name).is_null()) {
      return Invalid(name, absl::StrCat(name, " is not supported by this server (plain text generation only)"));
    }
  }
  if (!chat) {
    const Json& suffix = Field(body, "suffix");
    if (!suffix.is_null() && !(suffix.is_string() && suffix.get<std::string>().empty())) {
      return Invalid("suffix", "suffix is not supported by this server; leave it out");
    }
    absl::StatusOr<int64_t> best_of = Integer(body, "best_of", 1, 1, 1);
    if (!best_of.ok()) return Invalid("best_of", "best_of must be 1: this server returns one completion per request");
  }
  return absl::OkStatus();
}

// What both endpoints share: model, n, sampling, stop, stream and stream_options.
absl::Status ParseCommon(const Json& body, int default_max_tokens, OpenAiRequest* out) {
  const Json& model = Field(body, "model");
  if (!model.is_null() && !model.is_string()) return Invalid("model", "model must be a string");
  if (model.is_string()) out->model = model.get<std::string>();
  MMX_ASSIGN_OR_RETURN(const int64_t n, Integer(body, "n", 1, 1, std::numeric_limits<int32_t>::max()));
  if (n != 1) return Invalid("n", absl::StrCat("n must be 1: this server returns one completion per request, got ", n));
  MMX_RETURN_IF_ERROR(RefuseUnsupported(body, out->chat));

  v1::SamplingParams& s = *out->generate.mutable_sampling();
  const char* max_name = out->chat && !Field(body, "max_completion_tokens").is_null() ? "max_completion_tokens" : "max_tokens";
  MMX_ASSIGN_OR_RETURN(const int64_t max_tokens,
                       Integer(body, max_name, default_max_tokens, out->echo ? 0 : 1, std::numeric_limits<int32_t>::max()));
  // Nothing to generate (scoring an echoed prompt): the server still samples one token, unseen.
  out->drop_output = max_tokens == 0;
  s.set_max_tokens(static_cast<int32_t>(std::max<int64_t>(max_tokens, 1)));
  MMX_ASSIGN_OR_RETURN(const double temperature, Number(body, "temperature", 1.0, 0.0, 2.0));
  s.set_temperature(static_cast<float>(temperature));
  MMX_ASSIGN_OR_RETURN(const double top_p, Number(body, "top_p", 1.0, 0.0, 1.0));
  if (top_p <= 0.0) return Invalid("top_p", "top_p must be above 0 (1 keeps every token)");
  s.set_top_p(static_cast<float>(top_p));
  MMX_ASSIGN_OR_RETURN(const int64_t top_k, Integer(body, "top_k", 0, -1, std::numeric_limits<int32_t>::max()));
  s.set_top_k(static_cast<int32_t>(std::max<int64_t>(top_k, 0)));  // -1 is vLLM's "off"
  MMX_ASSIGN_OR_RETURN(const bool ignore_eos, Bool(body, "ignore_eos"));  // vLLM's extension, for benchmarks
  s.set_ignore_eos(ignore_eos);
  const Json& seed = Field(body, "seed");
  if (!seed.is_null()) {
    if (!seed.is_number_integer()) return Invalid("seed", "seed must be an integer");
    s.set_seed(seed.is_number_unsigned() ? seed.get<uint64_t>() : static_cast<uint64_t>(seed.get<int64_t>()));
  }
  const Json& stop = Field(body, "stop");
  if (stop.is_string()) {
    s.add_stop(stop.get<std::string>());
  } else if (stop.is_array()) {
    for (const Json& one : stop) {
      if (!one.is_string()) return Invalid("stop", "stop must be a string or a list of strings");
      s.add_stop(one.get<std::string>());
    }
  } else if (!stop.is_null()) {
    return Invalid("stop", "stop must be a string or a list of strings");
  }

  MMX_ASSIGN_OR_RETURN(out->stream, Bool(body, "stream"));
  const Json& options = Field(body, "stream_options");
  if (!options.is_null()) {
    if (!out->stream) return Invalid("stream_options", "stream_options is only allowed with stream: true");
    if (!options.is_object()) return Invalid("stream_options", "stream_options must be an object");
    MMX_ASSIGN_OR_RETURN(out->include_usage, Bool(options, "include_usage"));
  }
  return absl::OkStatus();
}

// A message's content: a string, or a list of text parts ({"type": "text", "text": ...}).
absl::StatusOr<std::string> MessageContent(const Json& content, const std::string& where) {
  if (content.is_string()) return content.get<std::string>();
  if (!content.is_array()) return Invalid(where, absl::StrCat(where, " must be a string or a list of text parts"));
  std::string text;
  for (size_t i = 0; i < content.size(); ++i) {
    const Json& part = content[i];
    const std::string at = absl::StrCat(where, "[", i, "]");
    if (!part.is_object() || Field(part, "type") != "text") {
      return Invalid(at, absl::StrCat(at, " must be {\"type\": \"text\", \"text\": ...}: this model reads text only"));
    }
    if (!Field(part, "text").is_string()) return Invalid(at, absl::StrCat(at, ".text must be a string"));
    text += Field(part, "text").get<std::string>();
  }
  return text;
}

}  // namespace

absl::StatusOr<OpenAiRequest> ParseChatCompletionRequest(std::string_view text, int default_max_tokens) {
  MMX_ASSIGN_OR_RETURN(const Json body, ParseBody(text));
  OpenAiRequest out;
  out.chat = true;
  MMX_RETURN_IF_ERROR(ParseCommon(body, default_max_tokens, &out));
  const Json& messages = Field(body, "messages");
  if (!messages.is_array() || messages.empty()) {
    return Invalid("messages", "messages must be a non-empty list of {\"role\", \"content\"}");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const Json& m = messages[i];
    const std::string at = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return Invalid(at, absl::StrCat(at, " must be an object with role and content"));
    const Json& role = Field(m, "role");
    if (!role.is_string()) return Invalid(at + ".role", absl::StrCat(at, ".role must be system, user or assistant"));
    std::string r = role.get<std::string>();
    if (r == "developer") r = "system";  // OpenAI's newer name for the system turn
    if (r != "system" && r != "user" && r != "assistant") {
      return Invalid(at + ".role", absl::StrCat(at, ".role must be system, user or assistant (tools are not supported)"));
    }
    MMX_ASSIGN_OR_RETURN(std::string content, MessageContent(Field(m, "content"), at + ".content"));
    v1::ChatMessage* message = out.generate.add_messages();
    message->set_role(r);
    message->set_content(std::move(content));
  }
  MMX_ASSIGN_OR_RETURN(out.logprobs, Bool(body, "logprobs"));
  MMX_ASSIGN_OR_RETURN(const int64_t top, Integer(body, "top_logprobs", 0, 0, 20));
  if (top > 0 && !out.logprobs) return Invalid("top_logprobs", "top_logprobs needs logprobs: true");
  out.top_logprobs = static_cast<int>(top);
  out.generate.mutable_sampling()->set_logprobs(out.top_logprobs);
  return out;
}

absl::StatusOr<OpenAiRequest> ParseCompletionRequest(std::string_view text, int default_max_tokens) {
  MMX_ASSIGN_OR_RETURN(const Json body, ParseBody(text));
  OpenAiRequest out;
  MMX_ASSIGN_OR_RETURN(out.echo, Bool(body, "echo"));
  // OpenAI's legacy completions stop at 16 tokens unless told otherwise.
  MMX_RETURN_IF_ERROR(ParseCommon(body, std::min(16, default_max_tokens), &out));
  // One prompt: a string, a list of token ids, or a list holding exactly one of those.
  Json prompt = Field(body, "prompt");
  if (prompt.is_array() && prompt.size() == 1 && (prompt[0].is_string() || prompt[0].is_array())) prompt = prompt[0];
  if (prompt.is_string()) {
    if (prompt.get<std::string>().empty()) return Invalid("prompt", "prompt is empty; give some text or token ids");
    out.generate.set_prompt(prompt.get<std::string>());
  } else if (prompt.is_array() && !prompt.empty() && prompt[0].is_number()) {
    for (const Json& id : prompt) {
      if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > std::numeric_limits<int32_t>::max()) {
        return Invalid("prompt", "a prompt of token ids must hold only non-negative integers");
      }
      out.generate.add_prompt_token_ids(static_cast<int32_t>(id.get<int64_t>()));
    }
  } else if (prompt.is_array() && prompt.size() > 1) {
    return Invalid("prompt", "give one prompt per request (a string or a list of token ids), not a batch");
  } else {
    return Invalid("prompt", "prompt must be a string or a list of token ids");
  }
  const Json& logprobs = Field(body, "logprobs");
  if (!logprobs.is_null()) {
    MMX_ASSIGN_OR_RETURN(const int64_t top, Integer(body, "logprobs", 0, 0, 20));
    out.logprobs = true;
    out.top_logprobs = static_cast<int>(top);
    out.generate.mutable_sampling()->set_logprobs(out.top_logprobs);
    if (out.echo) out.generate.mutable_sampling()->set_prompt_logprobs(out.top_logprobs);
  }
  return out;
}

std::string OpenAiParamOf(const absl::Status& status) {
  const auto param = status.GetPayload(kOpenAiParamPayload);
  return param ? std::string(*param) : "";
}

}  // namespace mmx::coordinator
