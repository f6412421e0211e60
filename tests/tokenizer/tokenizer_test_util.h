// Small tokenizer.json documents for unit tests, built with nlohmann::json.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace mmx::tokenizer {

using TestJson = nlohmann::json;

// A BPE model: tokens get ids 0, 1, 2, ... in the order given; merges as "a b" strings.
inline TestJson BpeModel(const std::vector<std::string>& tokens,
                         const std::vector<std::string>& merges) {
  TestJson vocab = TestJson::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  return {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}};
}

// A whole tokenizer.json around `model`, with no other component.
inline TestJson TokenizerWith(const TestJson& model) {
  return {{"version", "1.0"}, {"model", model}, {"added_tokens", TestJson::array()}};
}

inline TestJson Added(int id, const std::string& content, bool special = true) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", special}};
}

// The tokenizer of `json`; fails the test (and returns null) when it does not load.
inline std::unique_ptr<Tokenizer> Build(const TestJson& json) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer = Tokenizer::FromJson(json.dump());
  EXPECT_TRUE(tokenizer.ok()) << tokenizer.status();
  return tokenizer.ok() ? std::move(*tokenizer) : nullptr;
}

// A byte-level tokenizer whose id b is the token of byte b (no merges), with ByteLevel
// pre-tokenizer and decoder and the added special token "<eos>" as id 256.
inline TestJson ByteTokenizer() {
  std::vector<std::string> tokens;
  for (int b = 0; b < 256; ++b) {
    std::string token;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &token);
    tokens.push_back(token);
  }
  TestJson json = TokenizerWith(BpeModel(tokens, {}));
  json["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}};
  json["decoder"] = {{"type", "ByteLevel"}};
  json["added_tokens"] = TestJson::array({Added(256, "<eos>")});  // {x} alone is x under clang
  return json;
}

}  // namespace mmx::tokenizer
