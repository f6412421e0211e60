#include "model/tokenizer/tokenizer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "model/tokenizer/absl_compat.h"
#include "model/tokenizer/added_tokens.h"
#include "model/tokenizer/bpe.h"
#include "model/tokenizer/decoders.h"
#include "model/tokenizer/json_fields.h"
#include "model/tokenizer/normalizers.h"
#include "model/tokenizer/post_processors.h"
#include "model/tokenizer/pre_tokenizers.h"
#include "model/tokenizer/utf8.h"

namespace mmx::tokenizer {
namespace {

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return absl::ErrnoToStatus(errno, absl::StrCat("cannot open ", path));
  std::string text;
  char buffer[1 << 16];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, file)) > 0) text.append(buffer, n);
  const bool failed = std::ferror(file) != 0;
  const int error = errno;
  std::fclose(file);
  if (failed) return absl::ErrnoToStatus(error, absl::StrCat("cannot read ", path));
  return text;
}

const Json* OptionalMember(const Json& root, const char* key) {
  auto it = root.find(key);
  return it == root.end() || it->is_null() ? nullptr : &*it;
}

absl::StatusOr<std::unique_ptr<BpeModel>> ParseModel(const Json& root) {
  const Json* model = OptionalMember(root, "model");
  if (model == nullptr) return JsonError("", "missing \"model\"");
  if (!model->is_object()) return JsonError("model", "expected an object");
  // HF writes "type"; older files leave it out and a BPE is recognised by its merges.
  if (model->contains("type")) {
    MMX_ASSIGN_OR_RETURN(const std::string type, JsonType(*model, "model"));
    if (type != "BPE") return UnsupportedType("model", type);
  } else if (!model->contains("merges")) {
    return JsonError("model", "missing \"type\" (only BPE models are supported)");
  }
  return BpeModel::FromJson(*model, "model");
}

}  // namespace

Tokenizer::Tokenizer() = default;
Tokenizer::~Tokenizer() = default;

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& tokenizer_json_path) {
  MMX_ASSIGN_OR_RETURN(const std::string json, ReadFile(tokenizer_json_path));
  const std::filesystem::path config_path =
      std::filesystem::path(tokenizer_json_path).parent_path() / "tokenizer_config.json";
  std::string config;
  std::error_code ec;
  if (std::filesystem::exists(config_path, ec)) {
    MMX_ASSIGN_OR_RETURN(config, ReadFile(config_path.string()));
  }
  return Parse(json, config, tokenizer_json_path, config_path.string());
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::FromJson(
    std::string_view tokenizer_json, std::string_view tokenizer_config_json) {
  return Parse(tokenizer_json, tokenizer_config_json, "tokenizer.json", "tokenizer_config.json");
}

absl::StatusOr<std::unique_ptr<Tokenizer>> Tokenizer::Parse(std::string_view tokenizer_json,
                                                            std::string_view tokenizer_config_json,
                                                            std::string_view json_name,
                                                            std::string_view config_name) {
  std::unique_ptr<Tokenizer> tokenizer(new Tokenizer());
  MMX_ASSIGN_OR_RETURN(tokenizer->config_,
                       ParseTokenizerConfig(tokenizer_config_json, config_name));
  Json root;
  try {
    root = Json::parse(tokenizer_json.begin(), tokenizer_json.end());
  } catch (const Json::exception& e) {  // parse_error, or out_of_range (1E400)
    return absl::InvalidArgumentError(
        absl::StrCat(AsAbsl(json_name), ": not valid JSON: ", e.what()));
  }
  // Every component error below names its JSON path; the file name goes in front once.
  absl::Status status = [&]() -> absl::Status {
    if (!root.is_object()) return JsonError("", "expected a JSON object");
    if (const Json* json = OptionalMember(root, "normalizer")) {
      MMX_ASSIGN_OR_RETURN(tokenizer->normalizer_, ParseNormalizer(*json, "normalizer"));
    }
    if (const Json* json = OptionalMember(root, "pre_tokenizer")) {
      MMX_ASSIGN_OR_RETURN(tokenizer->pre_tokenizer_, ParsePreTokenizer(*json, "pre_tokenizer"));
    }
    MMX_ASSIGN_OR_RETURN(tokenizer->model_, ParseModel(root));
    if (const Json* json = OptionalMember(root, "post_processor")) {
      MMX_ASSIGN_OR_RETURN(tokenizer->post_processor_, ParsePostProcessor(*json, "post_processor"));
    }
    if (const Json* json = OptionalMember(root, "decoder")) {
      MMX_ASSIGN_OR_RETURN(tokenizer->decoder_, ParseDecoder(*json, "decoder"));
    }
    const Json* added_json = OptionalMember(root, "added_tokens");
    MMX_ASSIGN_OR_RETURN(AddedVocabulary added,
                         AddedVocabulary::FromJson(added_json ? *added_json : Json(),
                                                   "added_tokens", tokenizer->normalizer_.get()));
    tokenizer->added_ = std::make_unique<AddedVocabulary>(std::move(added));
    return absl::OkStatus();
  }();
  if (!status.ok()) {
    return absl::Status(status.code(), absl::StrCat(AsAbsl(json_name), ": ", status.message()));
  }
  return tokenizer;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::EncodeWithoutPostProcessing(std::string_view text,
                                                                            bool special) const {
  const std::string valid = ToValidUtf8(text);
  std::vector<int32_t> ids;
  std::vector<std::string> pieces;
  for (const AddedVocabulary::Segment& raw : added_->Split(valid, /*normalized_pass=*/false, special)) {
    if (raw.id.has_value()) {
      ids.push_back(*raw.id);
      continue;
    }
    std::string normalized(raw.text);
    if (normalizer_ != nullptr) {
      MMX_ASSIGN_OR_RETURN(normalized, normalizer_->Normalize(raw.text));
    }
    for (const AddedVocabulary::Segment& segment :
         added_->Split(normalized, /*normalized_pass=*/true, special)) {
      if (segment.id.has_value()) {
        ids.push_back(*segment.id);
        continue;
      }
      pieces.assign(1, std::string(segment.text));
      if (pre_tokenizer_ != nullptr) MMX_RETURN_IF_ERROR(pre_tokenizer_->PreTokenize(&pieces));
      for (const std::string& piece : pieces) model_->Tokenize(piece, &ids);
    }
  }
  return ids;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::Encode(std::string_view text,
                                                      bool add_special_tokens) const {
  MMX_ASSIGN_OR_RETURN(std::vector<int32_t> ids, EncodeWithoutPostProcessing(text));
  if (!add_special_tokens || post_processor_ == nullptr) return ids;
  absl::StatusOr<IdSequences> processed = post_processor_->Process({std::move(ids)});
  MMX_CHECK(processed.ok());  // every processor has a single-sequence form (checked at load)
  std::vector<int32_t> out;
  for (const std::vector<int32_t>& sequence : *processed) {
    out.insert(out.end(), sequence.begin(), sequence.end());
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::EncodeLiteral(std::string_view text) const {
  return EncodeWithoutPostProcessing(text, /*special=*/false);
}

absl::StatusOr<std::vector<int32_t>> Tokenizer::EncodePair(std::string_view a, std::string_view b,
                                                           bool add_special_tokens) const {
  IdSequences sequences(2);
  MMX_ASSIGN_OR_RETURN(sequences[0], EncodeWithoutPostProcessing(a));
  MMX_ASSIGN_OR_RETURN(sequences[1], EncodeWithoutPostProcessing(b));
  if (add_special_tokens && post_processor_ != nullptr) {
    MMX_ASSIGN_OR_RETURN(sequences, post_processor_->Process(std::move(sequences)));
  }
  std::vector<int32_t> out;
  for (const std::vector<int32_t>& sequence : sequences) {
    out.insert(out.end(), sequence.begin(), sequence.end());
  }
  return out;
}

std::string Tokenizer::Decode(absl::Span<const int32_t> ids, bool skip_special_tokens) const {
  std::string out;
  std::vector<std::string> run;    // ordinary tokens since the last added token
  std::vector<std::string> parts;  // without a decoder: every token, joined by spaces
  auto flush = [&] {
    if (run.empty()) return;
    for (const std::string& text : decoder_->DecodeChain(std::move(run))) out += text;
    run.clear();
  };
  for (const int32_t id : ids) {
    if (const AddedToken* added = added_->FindById(id)) {
      if (skip_special_tokens && added->special) continue;
      if (decoder_ == nullptr) {
        parts.push_back(added->content);
      } else {
        flush();
        out += added->content;
      }
      continue;
    }
    if (const std::string* token = model_->IdToToken(id)) {
      (decoder_ == nullptr ? parts : run).push_back(*token);
    }
  }
  if (decoder_ == nullptr) return absl::StrJoin(parts, " ");
  flush();
  return out;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view token) const {
  if (std::optional<int32_t> id = added_->FindByContent(token)) return id;
  return model_->TokenToId(token);
}

std::optional<std::string> Tokenizer::IdToToken(int32_t id) const {
  if (const AddedToken* added = added_->FindById(id)) return added->content;
  if (const std::string* token = model_->IdToToken(id)) return *token;
  return std::nullopt;
}

int32_t Tokenizer::vocab_size() const { return std::max(model_->max_id(), added_->max_id()) + 1; }

bool Tokenizer::IsDefined(int32_t id) const {
  return added_->FindById(id) != nullptr || model_->IdToToken(id) != nullptr;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  const AddedToken* added = added_->FindById(id);
  return added != nullptr && added->special;
}

}  // namespace mmx::tokenizer
