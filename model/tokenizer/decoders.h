// tokenizer.json "decoder": turns the token strings of a run of ids back into text.
//
// As in HF, a decoder maps a list of token strings to a list of strings (a "chain") and Decode
// concatenates the result; Sequence feeds one decoder's list into the next. Supported:
// ByteLevel (stand-in characters back to bytes, then lossy UTF-8: invalid bytes become U+FFFD),
// Replace, Strip, ByteFallback ("<0xAB>" tokens to bytes), Fuse and Sequence.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/json_fields.h"

namespace mmx::tokenizer {

class Decoder {
 public:
  virtual ~Decoder() = default;
  // Thread-safe. The result is valid UTF-8 when the input is.
  virtual std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const = 0;
};

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const Json& json, std::string_view path);

}  // namespace mmx::tokenizer
