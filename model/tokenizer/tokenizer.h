// A Hugging Face tokenizer.json tokenizer (byte-level BPE, as MiniMax-Text-01, Qwen and
// DeepSeek ship), the incremental decoder for streamed output, and the MiniMax chat layout.
//
// Encode follows HF's pipeline: added tokens are cut out of the raw text first; each stretch
// between them is normalized, pre-tokenized into pieces and BPE-encoded piece by piece; with
// add_special_tokens the post-processor then adds what it adds (a template's BOS, say).
// Decode maps ids back to token strings and runs the decoder over each run of ordinary tokens;
// an added token contributes its content verbatim. Results match the Rust `tokenizers` crate
// and tokenizers.js on tests/data/tokenizer-golden.
//
// Input that is not valid UTF-8 is accepted: Encode first replaces each maximal invalid
// subpart by U+FFFD (so a byte-level vocabulary encodes EF BF BD for it). Decode output is
// always valid UTF-8; bytes that do not form UTF-8 come out as U+FFFD. Neither ever fails.
//
// Components: normalizers.h, pre_tokenizers.h, bpe.h (the only model type), added_tokens.h,
// post_processors.h and decoders.h list what each supports; any other type fails to load with
// Unimplemented naming the JSON path, e.g.
//   tokenizer.json: pre_tokenizer.pretokenizers[1]: unsupported type "Foo"
// tokenizer.json's "truncation" and "padding" are ignored. Not a trainer (tokenizer_maker.h
// makes test vocabularies); no offsets or type ids.
//
// Thread safety: a loaded Tokenizer is immutable (its BPE cache locks internally); share it
// freely. An IncrementalDecoder belongs to one stream.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "model/tokenizer/tokenizer_config.h"

namespace mmx::tokenizer {

class AddedVocabulary;
class BpeModel;
class Decoder;
class Normalizer;
class PostProcessor;
class PreTokenizer;

class Tokenizer {
 public:
  // Loads tokenizer.json; if a tokenizer_config.json sits next to it, reads it too (see
  // config()). NotFound / PermissionDenied for an unreadable file; InvalidArgument for
  // malformed JSON or components (the message starts with the file's path and names the JSON
  // path); Unimplemented for a component type we do not support.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Load(const std::string& tokenizer_json_path);
  // The same from file contents; errors start with "tokenizer.json: " or
  // "tokenizer_config.json: ".
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJson(
      std::string_view tokenizer_json, std::string_view tokenizer_config_json = "");
  ~Tokenizer();

  // Fails (ResourceExhausted) only when a regex of the tokenizer's gives up on this text: a
  // pattern that backtracks without bound (Regex::FindAll). The text itself is never at fault.
  absl::StatusOr<std::vector<int32_t>> Encode(std::string_view text,
                                              bool add_special_tokens = true) const;
  // `text` as plain text: special added tokens are not matched (their text is tokenized like any
  // other), nothing is added. For text a user supplied inside a structure whose special tokens
  // the caller places (chat messages): HF's split_special_tokens. Fails as Encode does.
  absl::StatusOr<std::vector<int32_t>> EncodeLiteral(std::string_view text) const;
  // A pair of sequences (as for a cross-encoder): the post-processor's pair template when
  // add_special_tokens, else A's ids then B's. FailedPrecondition if the post-processor has no
  // pair form; fails as Encode does.
  absl::StatusOr<std::vector<int32_t>> EncodePair(std::string_view a, std::string_view b,
                                                  bool add_special_tokens = true) const;
  // Ids no token has are skipped. skip_special_tokens drops added tokens marked special.
  std::string Decode(absl::Span<const int32_t> ids, bool skip_special_tokens = false) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;  // vocab or added token
  std::optional<std::string> IdToToken(int32_t id) const;
  int32_t vocab_size() const;        // one past the largest defined id
  bool IsDefined(int32_t id) const;  // some token has this id
  bool IsSpecial(int32_t id) const;  // an added token marked special

  // tokenizer_config.json's fields (all unset when there was none). Not applied by Encode.
  const TokenizerConfig& config() const { return config_; }

 private:
  Tokenizer();
  // `json_name` and `config_name` start error messages (file names or paths).
  static absl::StatusOr<std::unique_ptr<Tokenizer>> Parse(std::string_view tokenizer_json,
                                                          std::string_view tokenizer_config_json,
                                                          std::string_view json_name,
                                                          std::string_view config_name);
  // The ids of `text` before post-processing (special tokens matched unless !special).
  absl::StatusOr<std::vector<int32_t>> EncodeWithoutPostProcessing(std::string_view text,
                                                                   bool special = true) const;

  std::unique_ptr<Normalizer> normalizer_;       // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer_;  // may be null
  std::unique_ptr<BpeModel> model_;
  std::unique_ptr<PostProcessor> post_processor_;  // may be null
  std::unique_ptr<Decoder> decoder_;               // may be null: tokens joined by spaces
  std::unique_ptr<AddedVocabulary> added_;
  TokenizerConfig config_;
};

// Text deltas for a stream of generated ids: never splits a UTF-8 character across deltas
// (holds back an incomplete trailing sequence; invalid bytes become U+FFFD like HF's lossy
// decode). The concatenation of every Add() and the final Flush() equals
// tokenizer.Decode(all ids, skip_special_tokens).
//
// How: it decodes a short window of recent ids and emits the text past what the window's
// already-emitted prefix decodes to, unless that text ends in U+FFFD (an incomplete character
// that later ids may complete). NOTE: so a genuinely invalid byte, or a literal U+FFFD, at the
// very end is emitted with the next id or by Flush(), not at once.
// `tokenizer` must outlive the decoder. Not thread-safe (one stream, one caller).
class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  std::string Add(int32_t id);  // the newly completed text, possibly empty
  std::string Flush();          // the rest (incomplete bytes -> U+FFFD)

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::vector<int32_t> ids_;
  size_t prefix_offset_ = 0;  // ids_[prefix_offset_, read_offset_) decode to emitted text
  size_t read_offset_ = 0;    // ids_[read_offset_, end) are not yet emitted
};

struct ChatMessage {
  std::string role;  // system | user | assistant
  std::string content;
};

// MODEL.md §8's MiniMax-Text-01 chat layout, one turn per message:
//   <beginning_of_sentence>system ai_setting=assistant\n{content}<end_of_sentence>\n
//   <beginning_of_sentence>user name=user\n{content}<end_of_sentence>\n
//   <beginning_of_sentence>ai name=assistant\n{content}<end_of_sentence>\n
// then, with add_generation_prompt, "<beginning_of_sentence>ai name=assistant\n". Roles are
// taken as given, in any order. InvalidArgument names the index of a message with another role.
// Content is not escaped: text that spells a special token encodes as that token if this
// string is encoded as a whole (what Hugging Face's apply_chat_template + encode does).
absl::StatusOr<std::string> FormatMiniMaxChat(const std::vector<ChatMessage>& messages,
                                              bool add_generation_prompt = true);

// The same layout as token ids, with the content as data: the layout's own special tokens are
// placed by id and every stretch between them (role header and content) is encoded with
// EncodeLiteral, so text in a message that spells <end_of_sentence> or <beginning_of_sentence>
// is tokenized as text and cannot open another turn. For content that spells no special token
// the ids are those of Encode(FormatMiniMaxChat(...), false): the layout's special tokens cut the
// string at the same places. FailedPrecondition if the tokenizer lacks the layout's tokens.
absl::StatusOr<std::vector<int32_t>> EncodeMiniMaxChat(const Tokenizer& tokenizer,
                                                       const std::vector<ChatMessage>& messages,
                                                       bool add_generation_prompt = true);

}  // namespace mmx::tokenizer
