#include "model/tokenizer/tokenizer_config.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/tokenizer/absl_compat.h"
#include "model/tokenizer/json_fields.h"

namespace mmx::tokenizer {
namespace {

absl::StatusOr<std::optional<bool>> OptionalBool(const Json& root, const char* key) {
  if (!root.contains(key) || root[key].is_null()) return std::optional<bool>();
  if (!root[key].is_boolean()) return JsonError(key, "expected true or false");
  return std::optional<bool>(root[key].get<bool>());
}

// A special token is a string or an AddedToken object {"content": "...", ...}.
absl::StatusOr<std::optional<std::string>> OptionalToken(const Json& root, const char* key) {
  if (!root.contains(key) || root[key].is_null()) return std::optional<std::string>();
  const Json& value = root[key];
  if (value.is_string()) return std::optional<std::string>(value.get<std::string>());
  if (value.is_object()) {
    MMX_ASSIGN_OR_RETURN(std::string content, JsonString(value, "content", key));
    return std::optional<std::string>(std::move(content));
  }
  return JsonError(key, "expected a string or {\"content\": ...}");
}

absl::StatusOr<std::optional<std::string>> ChatTemplate(const Json& root) {
  if (!root.contains("chat_template") || root["chat_template"].is_null()) {
    return std::optional<std::string>();
  }
  const Json& value = root["chat_template"];
  if (value.is_string()) return std::optional<std::string>(value.get<std::string>());
  if (value.is_array()) {
    for (size_t i = 0; i < value.size(); ++i) {
      const std::string path = JsonIndex("chat_template", i);
      MMX_ASSIGN_OR_RETURN(const std::string name, JsonString(value[i], "name", path));
      if (name != "default") continue;
      MMX_ASSIGN_OR_RETURN(std::string text, JsonString(value[i], "template", path));
      return std::optional<std::string>(std::move(text));
    }
    return std::optional<std::string>();
  }
  return JsonError("chat_template", "expected a string or a list of {name, template}");
}

absl::StatusOr<TokenizerConfig> Parse(std::string_view json_text) {
  TokenizerConfig config;
  if (json_text.empty()) return config;
  Json root;
  try {
    root = Json::parse(json_text.begin(), json_text.end());
  } catch (const Json::exception& e) {  // parse_error, or out_of_range (1E400)
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", e.what()));
  }
  if (!root.is_object()) return absl::InvalidArgumentError("expected a JSON object");
  MMX_ASSIGN_OR_RETURN(config.add_bos_token, OptionalBool(root, "add_bos_token"));
  MMX_ASSIGN_OR_RETURN(config.add_eos_token, OptionalBool(root, "add_eos_token"));
  MMX_ASSIGN_OR_RETURN(config.clean_up_tokenization_spaces,
                       OptionalBool(root, "clean_up_tokenization_spaces"));
  MMX_ASSIGN_OR_RETURN(config.bos_token, OptionalToken(root, "bos_token"));
  MMX_ASSIGN_OR_RETURN(config.eos_token, OptionalToken(root, "eos_token"));
  MMX_ASSIGN_OR_RETURN(config.pad_token, OptionalToken(root, "pad_token"));
  MMX_ASSIGN_OR_RETURN(config.unk_token, OptionalToken(root, "unk_token"));
  MMX_ASSIGN_OR_RETURN(config.chat_template, ChatTemplate(root));
  MMX_ASSIGN_OR_RETURN(config.tokenizer_class, JsonOptionalString(root, "tokenizer_class", ""));
  return config;
}

}  // namespace

absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(std::string_view json_text,
                                                     std::string_view file_name) {
  absl::StatusOr<TokenizerConfig> config = Parse(json_text);
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat(AsAbsl(file_name), ": ", config.status().message()));
  }
  return config;
}

}  // namespace mmx::tokenizer
