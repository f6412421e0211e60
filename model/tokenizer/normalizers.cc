#include "model/tokenizer/normalizers.h"

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>

#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "model/tokenizer/pattern.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

icu::UnicodeString ToIcu(std::string_view text) {
  return icu::UnicodeString::fromUTF8(
      icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
}

std::string FromIcu(const icu::UnicodeString& text) {
  std::string out;
  text.toUTF8String(out);
  return out;
}

enum class UnicodeForm { kNfc, kNfd, kNfkc, kNfkd };

class UnicodeNormalizer : public Normalizer {
 public:
  explicit UnicodeNormalizer(const icu::Normalizer2* normalizer) : normalizer_(normalizer) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    UErrorCode status = U_ZERO_ERROR;
    // Most text is already normalized; the quick check avoids two conversions.
    const icu::UnicodeString input = ToIcu(text);
    if (normalizer_->isNormalized(input, status) && U_SUCCESS(status)) return std::string(text);
    status = U_ZERO_ERROR;
    const icu::UnicodeString output = normalizer_->normalize(input, status);
    return U_SUCCESS(status) ? FromIcu(output) : std::string(text);
  }

 private:
  const icu::Normalizer2* normalizer_;  // ICU-owned singleton, thread-safe
};

absl::StatusOr<std::unique_ptr<Normalizer>> MakeUnicodeNormalizer(UnicodeForm form,
                                                                  std::string_view path) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = nullptr;
  switch (form) {
    case UnicodeForm::kNfc:
      normalizer = icu::Normalizer2::getNFCInstance(status);
      break;
    case UnicodeForm::kNfd:
      normalizer = icu::Normalizer2::getNFDInstance(status);
      break;
    case UnicodeForm::kNfkc:
      normalizer = icu::Normalizer2::getNFKCInstance(status);
      break;
    case UnicodeForm::kNfkd:
      normalizer = icu::Normalizer2::getNFKDInstance(status);
      break;
  }
  if (U_FAILURE(status) || normalizer == nullptr) {
    return absl::InternalError(std::string(path) +
                               ": ICU normalizer unavailable: " + u_errorName(status));
  }
  return std::make_unique<UnicodeNormalizer>(normalizer);
}

class LowercaseNormalizer : public Normalizer {
 public:
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    icu::UnicodeString s = ToIcu(text);
    s.toLower(icu::Locale::getRoot());
    return FromIcu(s);
  }
};

// Removes combining marks (general category M). Meant to follow NFD/NFKD, as in HF.
class StripAccentsNormalizer : public Normalizer {
 public:
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    std::string out;
    out.reserve(text.size());
    size_t pos = 0;
    while (pos < text.size()) {
      size_t length;
      const char32_t cp = DecodeUtf8(text, pos, &length);
      if ((U_GET_GC_MASK(cp) & U_GC_M_MASK) == 0) out.append(text.substr(pos, length));
      pos += length;
    }
    return out;
  }
};

class StripNormalizer : public Normalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    size_t begin = 0, end = text.size();
    size_t pos = 0;
    bool leading = true;
    // One pass: skip leading White_Space, remember where the last non-space character ends.
    size_t last_non_space_end = 0;
    while (pos < text.size()) {
      size_t length;
      const bool space = IsWhiteSpace(DecodeUtf8(text, pos, &length));
      if (!space) {
        if (leading) begin = pos;
        leading = false;
        last_non_space_end = pos + length;
      }
      pos += length;
    }
    if (leading) return left_ || right_ ? std::string() : std::string(text);
    if (!left_) begin = 0;
    if (right_) end = last_non_space_end;
    return std::string(text.substr(begin, end - begin));
  }

 private:
  bool left_;
  bool right_;
};

class ReplaceNormalizer : public Normalizer {
 public:
  ReplaceNormalizer(Pattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    return pattern_.ReplaceAll(text, content_);
  }

 private:
  Pattern pattern_;
  std::string content_;
};

class PrependNormalizer : public Normalizer {
 public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    // HF prepends to non-empty text only.
    return text.empty() ? std::string() : prefix_ + std::string(text);
  }

 private:
  std::string prefix_;
};

class SequenceNormalizer : public Normalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> steps)
      : steps_(std::move(steps)) {}
  absl::StatusOr<std::string> Normalize(std::string_view text) const override {
    std::string current(text);
    for (const auto& step : steps_) {
      MMX_ASSIGN_OR_RETURN(current, step->Normalize(current));
    }
    return current;
  }

 private:
  std::vector<std::unique_ptr<Normalizer>> steps_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Normalizer>> ParseNormalizer(const Json& json,
                                                            std::string_view path) {
  MMX_ASSIGN_OR_RETURN(const std::string type, JsonType(json, path));
  if (type == "NFC") return MakeUnicodeNormalizer(UnicodeForm::kNfc, path);
  if (type == "NFD") return MakeUnicodeNormalizer(UnicodeForm::kNfd, path);
  if (type == "NFKC") return MakeUnicodeNormalizer(UnicodeForm::kNfkc, path);
  if (type == "NFKD") return MakeUnicodeNormalizer(UnicodeForm::kNfkd, path);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Strip") {
    MMX_ASSIGN_OR_RETURN(const bool left, JsonBool(json, "strip_left", true, path));
    MMX_ASSIGN_OR_RETURN(const bool right, JsonBool(json, "strip_right", true, path));
    return std::make_unique<StripNormalizer>(left, right);
  }
  if (type == "Replace") {
    MMX_ASSIGN_OR_RETURN(const Json* pattern_json, JsonObject(json, "pattern", path));
    MMX_ASSIGN_OR_RETURN(Pattern pattern,
                         Pattern::FromJson(*pattern_json, JsonChild(path, "pattern")));
    MMX_ASSIGN_OR_RETURN(std::string content, JsonString(json, "content", path));
    return std::make_unique<ReplaceNormalizer>(std::move(pattern), std::move(content));
  }
  if (type == "Prepend") {
    MMX_ASSIGN_OR_RETURN(std::string prefix, JsonString(json, "prepend", path));
    return std::make_unique<PrependNormalizer>(std::move(prefix));
  }
  if (type == "Sequence") {
    MMX_ASSIGN_OR_RETURN(const Json* list, JsonArray(json, "normalizers", path));
    std::vector<std::unique_ptr<Normalizer>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      MMX_ASSIGN_OR_RETURN(
          std::unique_ptr<Normalizer> step,
          ParseNormalizer((*list)[i], JsonIndex(JsonChild(path, "normalizers"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceNormalizer>(std::move(steps));
  }
  return UnsupportedType(path, type);
}

}  // namespace mmx::tokenizer
