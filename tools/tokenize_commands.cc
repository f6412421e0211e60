#include "tools/tokenize_commands.h"

#include <cstdio>
#include <iostream>
#include <iterator>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "nlohmann/json.hpp"

namespace mmx::tools {
namespace {

using Json = nlohmann::json;

std::string ReadAll(std::istream& in) {
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteAll(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

}  // namespace

TokenizeCommands::TokenizeCommands(CLI::App& app) {
  tokenize_ = app.add_subcommand("tokenize", "Print the token ids of the text on stdin (local)");
  tokenize_->add_option("--tokenizer", tokenizer_path_, "tokenizer.json")->required();
  tokenize_->add_flag("--json", json_, "Print one JSON object {\"ids\": [...]}");
  tokenize_->add_flag("--no-special", no_special_,
                      "Leave out the special tokens the post-processor would add");
  detokenize_ = app.add_subcommand(
      "detokenize", "Print the text of a JSON array of token ids read from stdin (local)");
  detokenize_->add_option("--tokenizer", tokenizer_path_, "tokenizer.json")->required();
  detokenize_->add_flag("--skip-special", skip_special_, "Leave out special tokens");
}

bool TokenizeCommands::parsed() const { return tokenize_->parsed() || detokenize_->parsed(); }

absl::Status TokenizeCommands::Run() const {
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<tokenizer::Tokenizer> tokenizer,
                       tokenizer::Tokenizer::Load(tokenizer_path_));
  std::ios::sync_with_stdio(false);
  std::cin.unsetf(std::ios::skipws);
  const std::string input = ReadAll(std::cin);
  if (tokenize_->parsed()) {
    MMX_ASSIGN_OR_RETURN(const std::string output,
                         FormatTokenizeOutput(*tokenizer, input, json_, !no_special_));
    WriteAll(output);
    return absl::OkStatus();
  }
  MMX_ASSIGN_OR_RETURN(const std::string text, DetokenizeJson(*tokenizer, input, skip_special_));
  WriteAll(text);
  return absl::OkStatus();
}

absl::StatusOr<std::string> FormatTokenizeOutput(const tokenizer::Tokenizer& tokenizer,
                                                 std::string_view text, bool json,
                                                 bool add_special_tokens) {
  MMX_ASSIGN_OR_RETURN(const std::vector<int32_t> ids, tokenizer.Encode(text, add_special_tokens));
  if (json) return Json{{"ids", ids}}.dump() + "\n";
  return absl::StrJoin(ids, " ") + "\n";
}

absl::StatusOr<std::string> DetokenizeJson(const tokenizer::Tokenizer& tokenizer,
                                           std::string_view json_ids, bool skip_special_tokens) {
  Json parsed;
  try {
    parsed = Json::parse(json_ids.begin(), json_ids.end());
  } catch (const Json::exception& e) {  // parse_error, or out_of_range (1E400)
    return absl::InvalidArgumentError(
        absl::StrCat("stdin is not JSON (expected an array of token ids): ", e.what()));
  }
  // Also take tokenize --json's {"ids": [...]}, so the two commands pipe into each other.
  if (parsed.is_object() && parsed.size() == 1 && parsed.contains("ids")) {
    parsed = parsed["ids"];
  }
  if (!parsed.is_array()) {
    return absl::InvalidArgumentError("stdin must be a JSON array of token ids, like [9707, 11]");
  }
  std::vector<int32_t> ids;
  ids.reserve(parsed.size());
  for (size_t i = 0; i < parsed.size(); ++i) {
    const Json& value = parsed[i];
    if (!value.is_number_integer()) {
      return absl::InvalidArgumentError(
          absl::StrCat("element ", i, " is ", value.dump(), ", not a token id"));
    }
    const int64_t id = value.get<int64_t>();
    if (id < 0 || id >= tokenizer.vocab_size() || !tokenizer.IsDefined(static_cast<int32_t>(id))) {
      return absl::InvalidArgumentError(
          absl::StrCat("element ", i, ": id ", id, " is not defined by the tokenizer (ids are 0..",
                       tokenizer.vocab_size() - 1, ")"));
    }
    ids.push_back(static_cast<int32_t>(id));
  }
  return tokenizer.Decode(ids, skip_special_tokens);
}

}  // namespace mmx::tools
