// `mmx tokenize` and `mmx detokenize`: text <-> token ids with a tokenizer.json, in this
// process (no server needed).
//   mmx tokenize --tokenizer FILE [--json] [--no-special]   stdin text -> ids
//   mmx detokenize --tokenizer FILE [--skip-special]       stdin JSON ids -> text
// tokenize reads stdin exactly as given (a trailing newline is text too) and prints the ids
// space-separated on one line, or with --json exactly one object {"ids": [...]}; --no-special
// encodes without the post-processor's special tokens. detokenize reads a JSON array of ids
// (or tokenize --json's object) and prints the text as is, with no newline added. Errors
// (unreadable tokenizer, input that is not JSON, an id the tokenizer does not define) are
// returned as a Status, which mmx prints as one line before exiting non-zero.
#pragma once

#include <string>
#include <string_view>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/tokenizer/tokenizer.h"

namespace mmx::tools {

// Registers both subcommands on `app`; Run() runs whichever was parsed, on stdin and stdout.
class TokenizeCommands {
 public:
  explicit TokenizeCommands(CLI::App& app);
  bool parsed() const;
  absl::Status Run() const;

 private:
  CLI::App* tokenize_;
  CLI::App* detokenize_;
  std::string tokenizer_path_;
  bool json_ = false;
  bool no_special_ = false;
  bool skip_special_ = false;
};

// The commands' output for a given input, without I/O; fails as Tokenizer::Encode does.
absl::StatusOr<std::string> FormatTokenizeOutput(const tokenizer::Tokenizer& tokenizer, std::string_view text,
                                 bool json, bool add_special_tokens);
// InvalidArgument for input that is not a JSON array of ids (or {"ids": [...]}) or names an id
// the tokenizer does not define.
absl::StatusOr<std::string> DetokenizeJson(const tokenizer::Tokenizer& tokenizer,
                                           std::string_view json_ids, bool skip_special_tokens);

}  // namespace mmx::tools
