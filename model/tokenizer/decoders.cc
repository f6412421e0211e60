#include "model/tokenizer/decoders.h"

#include <utility>

#include "base/status_macros.h"
#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/pattern.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

class ByteLevelDecoder : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string bytes;
    std::string token_bytes;
    for (const std::string& token : tokens) {
      // A token made only of stand-in characters becomes its bytes; any other token (an added
      // token's literal text, say) is kept as it is, as HF does.
      token_bytes.clear();
      bool all_stand_ins = true;
      size_t pos = 0;
      while (pos < token.size()) {
        size_t length;
        const std::optional<uint8_t> byte = UnicodeToByte(DecodeUtf8(token, pos, &length));
        if (!byte.has_value()) {
          all_stand_ins = false;
          break;
        }
        token_bytes.push_back(static_cast<char>(*byte));
        pos += length;
      }
      bytes += all_stand_ins ? token_bytes : token;
    }
    return {ToValidUtf8(bytes)};
  }
};

class ReplaceDecoder : public Decoder {
 public:
  ReplaceDecoder(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (std::string& token : tokens) {
      // Decoding cannot fail, so a regex that gives up (a broken tokenizer file: a pattern
      // that backtracks without bound) leaves its token as it is; the text stays readable.
      absl::StatusOr<std::string> replaced = pattern_.ReplaceAll(token, content_);
      if (replaced.ok()) token = *std::move(replaced);
    }
    return tokens;
  }

 private:
  Pattern pattern_;
  std::string content_;
};

// Removes up to `start` leading and `stop` trailing copies of one character from each token.
class StripDecoder : public Decoder {
 public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (std::string& token : tokens) {
      std::string_view rest(token);
      for (size_t i = 0; i < start_ && rest.substr(0, content_.size()) == content_; ++i) {
        rest.remove_prefix(content_.size());
      }
      for (size_t i = 0; i < stop_ && rest.size() >= content_.size() &&
                         rest.substr(rest.size() - content_.size()) == content_;
           ++i) {
        rest.remove_suffix(content_.size());
      }
      token = std::string(rest);
    }
    return tokens;
  }

 private:
  std::string content_;  // one character
  size_t start_;
  size_t stop_;
};

class ByteFallbackDecoder : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::vector<std::string> out;
    std::string pending;  // bytes of consecutive "<0xAB>" tokens
    size_t num_pending = 0;
    auto flush = [&] {
      if (num_pending == 0) return;
      // Valid bytes become their text; otherwise one U+FFFD per byte token, as HF does.
      if (IsValidUtf8(pending)) {
        out.push_back(pending);
      } else {
        for (size_t i = 0; i < num_pending; ++i) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
      num_pending = 0;
    };
    for (std::string& token : tokens) {
      int value = -1;
      if (token.size() == 6 && token.compare(0, 3, "<0x") == 0 && token[5] == '>') {
        value = HexByte(token[3], token[4]);
      }
      if (value >= 0) {
        pending.push_back(static_cast<char>(value));
        ++num_pending;
      } else {
        flush();
        out.push_back(std::move(token));
      }
    }
    flush();
    return out;
  }

 private:
  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static int HexByte(char high, char low) {
    const int h = HexDigit(high), l = HexDigit(low);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder : public Decoder {
 public:
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    std::string joined;
    for (const std::string& token : tokens) joined += token;
    return {std::move(joined)};
  }
};

class SequenceDecoder : public Decoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> steps)
      : steps_(std::move(steps)) {}
  std::vector<std::string> DecodeChain(std::vector<std::string> tokens) const override {
    for (const auto& step : steps_) tokens = step->DecodeChain(std::move(tokens));
    return tokens;
  }

 private:
  std::vector<std::unique_ptr<Decoder>> steps_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Decoder>> ParseDecoder(const Json& json, std::string_view path) {
  MMX_ASSIGN_OR_RETURN(const std::string type, JsonType(json, path));
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Replace") {
    MMX_ASSIGN_OR_RETURN(const Json* pattern_json, JsonObject(json, "pattern", path));
    MMX_ASSIGN_OR_RETURN(Pattern pattern,
                         Pattern::FromJson(*pattern_json, JsonChild(path, "pattern")));
    MMX_ASSIGN_OR_RETURN(std::string content, JsonString(json, "content", path));
    return std::make_unique<ReplaceDecoder>(std::move(pattern), std::move(content));
  }
  if (type == "Strip") {
    MMX_ASSIGN_OR_RETURN(std::string content, JsonString(json, "content", path));
    size_t length = 0;
    if (!content.empty()) DecodeUtf8(content, 0, &length);
    if (content.empty() || length != content.size()) {
      return JsonError(JsonChild(path, "content"), "expected exactly one character");
    }
    MMX_ASSIGN_OR_RETURN(const int64_t start, JsonInt(json, "start", 0, path));
    MMX_ASSIGN_OR_RETURN(const int64_t stop, JsonInt(json, "stop", 0, path));
    if (start < 0 || stop < 0) return JsonError(path, "\"start\" and \"stop\" must be >= 0");
    return std::make_unique<StripDecoder>(std::move(content), static_cast<size_t>(start),
                                          static_cast<size_t>(stop));
  }
  if (type == "Sequence") {
    MMX_ASSIGN_OR_RETURN(const Json* list, JsonArray(json, "decoders", path));
    std::vector<std::unique_ptr<Decoder>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      MMX_ASSIGN_OR_RETURN(std::unique_ptr<Decoder> step,
                           ParseDecoder((*list)[i], JsonIndex(JsonChild(path, "decoders"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceDecoder>(std::move(steps));
  }
  return UnsupportedType(path, type);
}

}  // namespace mmx::tokenizer
