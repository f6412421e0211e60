// tokenizer_config.json, the transformers-side companion of tokenizer.json: special-token
// names, add_bos_token/add_eos_token, the chat template.
//
// Read and exposed, not applied: Encode follows tokenizer.json alone (its post_processor
// decides what add_special_tokens adds), as the Rust library and tokenizers.js do. Python
// transformers instead rebuilds the post-processor of some classes from add_bos_token (so
// DeepSeek-V3's `tokenizer("hi")` starts with BOS there); a caller that wants that adds
// bos_token's id itself when add_bos_token is true.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace mmx::tokenizer {

struct TokenizerConfig {
  std::optional<bool> add_bos_token;
  std::optional<bool> add_eos_token;
  std::optional<std::string> bos_token;  // token contents; "{"content": ...}" objects unwrapped
  std::optional<std::string> eos_token;
  std::optional<std::string> pad_token;
  std::optional<std::string> unk_token;
  std::optional<bool> clean_up_tokenization_spaces;
  // The Jinja chat template; of a list of named templates, the one named "default".
  std::optional<std::string> chat_template;
  std::optional<std::string> tokenizer_class;
};

// InvalidArgument "<file_name>: <JSON path>: ..." for malformed JSON or a field of the wrong
// type. Unknown fields are ignored. An empty text gives an empty config.
absl::StatusOr<TokenizerConfig> ParseTokenizerConfig(
    std::string_view json_text, std::string_view file_name = "tokenizer_config.json");

}  // namespace mmx::tokenizer
