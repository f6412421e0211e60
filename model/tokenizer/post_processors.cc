#include "model/tokenizer/post_processors.h"

#include <map>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::tokenizer {
namespace {

// One template item: a sequence slot (0 for "A", 1 for "B") or a run of special ids.
struct TemplateItem {
  int sequence = -1;  // -1: special ids
  std::vector<int32_t> ids;
};
using Template = std::vector<TemplateItem>;

class TemplateProcessor : public PostProcessor {
 public:
  TemplateProcessor(Template single, std::optional<Template> pair)
      : single_(std::move(single)), pair_(std::move(pair)) {}

  absl::StatusOr<IdSequences> Process(IdSequences sequences) const override {
    const Template* layout = &single_;
    if (sequences.size() == 2) {
      if (!pair_.has_value()) {
        return absl::FailedPreconditionError(
            "post_processor: TemplateProcessing has no \"pair\" template");
      }
      layout = &*pair_;
    }
    std::vector<int32_t> out;
    for (const TemplateItem& item : *layout) {
      if (item.sequence < 0) {
        out.insert(out.end(), item.ids.begin(), item.ids.end());
      } else if (static_cast<size_t>(item.sequence) < sequences.size()) {
        const std::vector<int32_t>& s = sequences[item.sequence];
        out.insert(out.end(), s.begin(), s.end());
      }
    }
    return IdSequences{std::move(out)};
  }

 private:
  Template single_;
  std::optional<Template> pair_;
};

class IdentityProcessor : public PostProcessor {
 public:
  absl::StatusOr<IdSequences> Process(IdSequences sequences) const override { return sequences; }
};

class SequenceProcessor : public PostProcessor {
 public:
  explicit SequenceProcessor(std::vector<std::unique_ptr<PostProcessor>> steps)
      : steps_(std::move(steps)) {}
  absl::StatusOr<IdSequences> Process(IdSequences sequences) const override {
    for (const auto& step : steps_) {
      MMX_ASSIGN_OR_RETURN(sequences, step->Process(std::move(sequences)));
    }
    return sequences;
  }

 private:
  std::vector<std::unique_ptr<PostProcessor>> steps_;
};

// {"SpecialToken": {"id": "<s>", ...}} or {"Sequence": {"id": "A" | "B", ...}}.
absl::StatusOr<TemplateItem> ParseTemplateItem(
    const Json& json, std::string_view path,
    const std::map<std::string, std::vector<int32_t>>& special_tokens) {
  if (!json.is_object() || json.size() != 1) {
    return JsonError(path, "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}");
  }
  const std::string& kind = json.begin().key();
  const Json& body = json.begin().value();
  const std::string body_path = JsonChild(path, kind);
  MMX_ASSIGN_OR_RETURN(const std::string id, JsonString(body, "id", body_path));
  TemplateItem item;
  if (kind == "Sequence") {
    if (id != "A" && id != "B") {
      return JsonError(JsonChild(body_path, "id"), "expected \"A\" or \"B\", got \"" + id + "\"");
    }
    item.sequence = id == "A" ? 0 : 1;
    return item;
  }
  if (kind == "SpecialToken") {
    auto it = special_tokens.find(id);
    if (it == special_tokens.end()) {
      return JsonError(JsonChild(body_path, "id"),
                       "\"" + id + "\" is not in post_processor.special_tokens");
    }
    item.ids = it->second;
    return item;
  }
  return JsonError(path,
                   "expected {\"SpecialToken\": ...} or {\"Sequence\": ...}, got \"" + kind + "\"");
}

absl::StatusOr<Template> ParseTemplate(
    const Json& json, std::string_view path,
    const std::map<std::string, std::vector<int32_t>>& special_tokens) {
  if (!json.is_array()) return JsonError(path, "expected an array of template items");
  Template result;
  for (size_t i = 0; i < json.size(); ++i) {
    MMX_ASSIGN_OR_RETURN(TemplateItem item,
                         ParseTemplateItem(json[i], JsonIndex(path, i), special_tokens));
    result.push_back(std::move(item));
  }
  return result;
}

absl::StatusOr<std::unique_ptr<PostProcessor>> ParseTemplateProcessing(const Json& json,
                                                                       std::string_view path) {
  std::map<std::string, std::vector<int32_t>> special_tokens;
  if (json.contains("special_tokens") && !json["special_tokens"].is_null()) {
    MMX_ASSIGN_OR_RETURN(const Json* map, JsonObject(json, "special_tokens", path));
    const std::string map_path = JsonChild(path, "special_tokens");
    for (const auto& [name, entry] : map->items()) {
      const std::string entry_path = JsonChild(map_path, name);
      MMX_ASSIGN_OR_RETURN(const Json* ids_json, JsonArray(entry, "ids", entry_path));
      std::vector<int32_t> ids;
      for (size_t i = 0; i < ids_json->size(); ++i) {
        MMX_ASSIGN_OR_RETURN(const int32_t id,
                             JsonId((*ids_json)[i], JsonIndex(JsonChild(entry_path, "ids"), i)));
        ids.push_back(id);
      }
      special_tokens[name] = std::move(ids);
    }
  }
  MMX_ASSIGN_OR_RETURN(const Json* single_json, JsonArray(json, "single", path));
  MMX_ASSIGN_OR_RETURN(Template single,
                       ParseTemplate(*single_json, JsonChild(path, "single"), special_tokens));
  std::optional<Template> pair;
  if (json.contains("pair") && !json["pair"].is_null()) {
    MMX_ASSIGN_OR_RETURN(pair,
                         ParseTemplate(json["pair"], JsonChild(path, "pair"), special_tokens));
  }
  return std::make_unique<TemplateProcessor>(std::move(single), std::move(pair));
}

// BertProcessing / RobertaProcessing: "cls" and "sep" are ["token", id].
absl::StatusOr<int32_t> ParseTokenIdPair(const Json& json, std::string_view key,
                                         std::string_view path) {
  MMX_ASSIGN_OR_RETURN(const Json* pair, JsonArray(json, key, path));
  const std::string pair_path = JsonChild(path, key);
  if (pair->size() != 2 || !(*pair)[0].is_string()) {
    return JsonError(pair_path, "expected [\"token\", id]");
  }
  return JsonId((*pair)[1], JsonIndex(pair_path, 1));
}

}  // namespace

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& json,
                                                                  std::string_view path) {
  MMX_ASSIGN_OR_RETURN(const std::string type, JsonType(json, path));
  if (type == "TemplateProcessing") return ParseTemplateProcessing(json, path);
  if (type == "ByteLevel") return std::make_unique<IdentityProcessor>();
  if (type == "BertProcessing" || type == "RobertaProcessing") {
    MMX_ASSIGN_OR_RETURN(const int32_t cls, ParseTokenIdPair(json, "cls", path));
    MMX_ASSIGN_OR_RETURN(const int32_t sep, ParseTokenIdPair(json, "sep", path));
    // Bert: [CLS] A [SEP] B [SEP]; Roberta: <s> A </s> </s> B </s>.
    Template single = {{-1, {cls}}, {0, {}}, {-1, {sep}}};
    Template pair = single;
    if (type == "RobertaProcessing") pair.push_back({-1, {sep}});
    pair.push_back({1, {}});
    pair.push_back({-1, {sep}});
    return std::make_unique<TemplateProcessor>(std::move(single), std::move(pair));
  }
  if (type == "Sequence") {
    MMX_ASSIGN_OR_RETURN(const Json* list, JsonArray(json, "processors", path));
    std::vector<std::unique_ptr<PostProcessor>> steps;
    for (size_t i = 0; i < list->size(); ++i) {
      MMX_ASSIGN_OR_RETURN(
          std::unique_ptr<PostProcessor> step,
          ParsePostProcessor((*list)[i], JsonIndex(JsonChild(path, "processors"), i)));
      steps.push_back(std::move(step));
    }
    return std::make_unique<SequenceProcessor>(std::move(steps));
  }
  return UnsupportedType(path, type);
}

}  // namespace mmx::tokenizer
