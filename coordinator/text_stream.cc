#include "coordinator/text_stream.h"

#include <algorithm>

namespace mmx::coordinator {

size_t Utf8Boundary(const std::string& text, size_t limit) {
  size_t n = std::min(limit, text.size());
  // Step back over continuation bytes (10xxxxxx): a cut there would split a character.
  while (n > 0 && n < text.size() && (static_cast<unsigned char>(text[n]) & 0xC0) == 0x80) --n;
  return n;
}

TextStream::TextStream(const tokenizer::Tokenizer& tokenizer, std::vector<std::string> stop_strings)
    : decoder_(tokenizer, /*skip_special_tokens=*/true), stops_(std::move(stop_strings)) {
  for (const std::string& s : stops_) hold_ = std::max(hold_, s.empty() ? 0 : s.size() - 1);
}

std::string TextStream::Add(int32_t id, bool* stopped) {
  *stopped = stopped_;
  if (stopped_) return "";
  pending_ += decoder_.Add(id);
  return Release(/*final=*/false, stopped);
}

std::string TextStream::Finish(bool* stopped) {
  *stopped = stopped_;
  if (stopped_) return "";
  pending_ += decoder_.Flush();
  return Release(/*final=*/true, stopped);
}

std::string TextStream::Release(bool final, bool* stopped) {
  // The earliest stop string in the unreleased text (everything before pending_ was checked
  // when it was held back, and held-back text is at most hold_ bytes, so no match spans it).
  size_t first = std::string::npos;
  for (const std::string& s : stops_) {
    if (s.empty()) continue;
    const size_t at = pending_.find(s);
    if (at != std::string::npos) first = std::min(first, at);
  }
  std::string out;
  if (first != std::string::npos) {
    out = pending_.substr(0, first);
    pending_.clear();
    stopped_ = true;
    *stopped = true;
  } else {
    const size_t keep = final ? 0 : std::min(hold_, pending_.size());
    const size_t cut = final ? pending_.size() : Utf8Boundary(pending_, pending_.size() - keep);
    out = pending_.substr(0, cut);
    pending_.erase(0, cut);
  }
  released_ += out;
  return out;
}

}  // namespace mmx::coordinator
