// IncrementalDecoder (declared in tokenizer.h): streamed text deltas that never split a
// character. The window idea is text-generation-inference's: decoding a few already-emitted
// ids along with the new ones gives decoders that look at neighbouring tokens (Strip, a
// leading-space rule) the context they had when the whole sequence was decoded.
#include <utility>

#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

bool EndsWithReplacementChar(const std::string& text) {
  constexpr std::string_view kReplacement = "\xEF\xBF\xBD";
  return text.size() >= kReplacement.size() &&
         std::string_view(text).substr(text.size() - kReplacement.size()) == kReplacement;
}

}  // namespace

IncrementalDecoder::IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::string IncrementalDecoder::Add(int32_t id) {
  ids_.push_back(id);
  const absl::Span<const int32_t> ids(ids_);
  const std::string emitted = tokenizer_.Decode(
      ids.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string text = tokenizer_.Decode(ids.subspan(prefix_offset_), skip_special_tokens_);
  // NOTE: a trailing U+FFFD may be an incomplete character that the next id completes, so it
  // waits; lossy decoding is stable once no incomplete sequence ends the bytes.
  if (text.size() <= emitted.size() || EndsWithReplacementChar(text)) return "";
  prefix_offset_ = read_offset_;
  read_offset_ = ids_.size();
  return text.substr(emitted.size());
}

std::string IncrementalDecoder::Flush() {
  const absl::Span<const int32_t> ids(ids_);
  const std::string emitted = tokenizer_.Decode(
      ids.subspan(prefix_offset_, read_offset_ - prefix_offset_), skip_special_tokens_);
  const std::string text = tokenizer_.Decode(ids.subspan(prefix_offset_), skip_special_tokens_);
  prefix_offset_ = read_offset_ = ids_.size();
  return text.size() > emitted.size() ? text.substr(emitted.size()) : "";
}

}  // namespace mmx::tokenizer
