#include "model/tokenizer/pattern.h"

#include <utility>

#include "base/status_macros.h"

namespace mmx::tokenizer {

absl::StatusOr<Pattern> Pattern::FromJson(const Json& json, std::string_view path) {
  if (!json.is_object() || json.size() != 1) {
    return JsonError(path, "expected {\"String\": ...} or {\"Regex\": ...}");
  }
  const std::string& kind = json.begin().key();
  const Json& value = json.begin().value();
  if (!value.is_string()) return JsonError(JsonChild(path, kind), "expected a string");
  if (kind == "String") return Literal(value.get<std::string>());
  if (kind == "Regex") {
    absl::StatusOr<Pattern> pattern = FromRegex(value.get<std::string>());
    if (!pattern.ok()) {
      return JsonError(JsonChild(path, kind), std::string(pattern.status().message()));
    }
    return pattern;
  }
  return JsonError(path, "expected {\"String\": ...} or {\"Regex\": ...}, got \"" + kind + "\"");
}

Pattern Pattern::Literal(std::string literal) {
  Pattern pattern;
  pattern.literal_ = std::move(literal);
  return pattern;
}

absl::StatusOr<Pattern> Pattern::FromRegex(std::string_view regex) {
  Pattern pattern;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<Regex> compiled, Regex::Compile(regex));
  pattern.regex_ = std::move(compiled);
  return pattern;
}

absl::StatusOr<std::vector<Regex::Match>> Pattern::FindAll(std::string_view text) const {
  if (regex_ != nullptr) return regex_->FindAll(text);
  std::vector<Regex::Match> matches;
  if (literal_.empty()) return matches;
  size_t from = 0;
  while (true) {
    const size_t at = text.find(literal_, from);
    if (at == std::string_view::npos) break;
    matches.push_back({at, at + literal_.size()});
    from = at + literal_.size();
  }
  return matches;
}

absl::StatusOr<std::vector<Pattern::Span>> Pattern::Partition(std::string_view text) const {
  MMX_ASSIGN_OR_RETURN(const std::vector<Regex::Match> matches, FindAll(text));
  std::vector<Span> spans;
  size_t previous = 0;
  for (const Regex::Match& m : matches) {
    if (m.begin > previous) spans.push_back({previous, m.begin, false});
    spans.push_back({m.begin, m.end, true});
    previous = m.end;
  }
  if (previous < text.size()) spans.push_back({previous, text.size(), false});
  return spans;
}

absl::StatusOr<std::string> Pattern::ReplaceAll(std::string_view text,
                                                std::string_view content) const {
  MMX_ASSIGN_OR_RETURN(const std::vector<Regex::Match> matches, FindAll(text));
  std::string out;
  out.reserve(text.size());
  size_t previous = 0;
  for (const Regex::Match& m : matches) {
    out.append(text.substr(previous, m.begin - previous));
    out.append(content);
    previous = m.end;
  }
  out.append(text.substr(previous));
  return out;
}

}  // namespace mmx::tokenizer
