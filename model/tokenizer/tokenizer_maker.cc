#include "model/tokenizer/tokenizer_maker.h"

#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "base/status_macros.h"
#include "model/tokenizer/byte_level.h"
#include "model/tokenizer/pre_tokenizers.h"
#include "model/tokenizer/utf8.h"
#include "nlohmann/json.hpp"

namespace mmx::tokenizer {
namespace {

using OrderedJson = nlohmann::ordered_json;

constexpr int32_t kRealEosId = 200020;  // MODEL.md §8
constexpr std::string_view kBos = "<beginning_of_sentence>";
constexpr std::string_view kEos = "<end_of_sentence>";

// The training text: plain English and a little code, with the frequent words frequent.
constexpr std::string_view kCorpus =
    R"(The model reads the text as a list of tokens, and the tokens are numbers.
The tokenizer turns the text into the numbers and the numbers back into the text.
A token is a piece of a word, a whole word, a space or a sign. The most common words of the
text become tokens of their own, and the rare words are made of the pieces of other words.
In the beginning there was the byte, and every byte is a token. Then the trainer counts the
pairs of tokens that follow each other in the text, and the pair that is seen the most
becomes a new token. It does that again and again, until there is no pair left that is seen
twice, or until the vocabulary is full.
The server sends the prompt to the model, and the model returns one token at a time. Each
token is decoded into text and sent to the user as soon as it is ready. When the model writes
the end of the sentence, the answer is complete and the server closes the stream.
We test that the text comes back the same after it is encoded and decoded again: the
quick brown fox jumps over the lazy dog, and the lazy dog does not jump at all.
It is a small tokenizer for small models, and it is not meant for real work. It is the same
every time it is made, so that the tests can check the numbers that it gives.
A cluster of machines serves the model together. Some machines hold the attention layers
and some hold the experts; each expert is a small network, and the router picks two experts
for every token. The machines send their results to each other over the network, and the
coordinator keeps the requests of many users moving through the layers at the same time.
When a machine fails, the coordinator notices that it is gone, and the requests that it was
working on are sent again to the machines that are still there.

def encode(tokenizer, text):
    """Returns the token ids of the text."""
    ids = []
    for word in text.split(" "):
        if word in tokenizer.vocab:
            ids.append(tokenizer.vocab[word])
        else:
            ids.extend(tokenizer.encode_bytes(word))
    return ids

def decode(tokenizer, ids):
    return "".join(tokenizer.tokens[i] for i in ids)

int count_tokens(const std::vector<int>& ids, int value) {
  int count = 0;
  for (int i = 0; i < static_cast<int>(ids.size()); ++i) {
    if (ids[i] == value) count += 1;
  }
  return count;
}

class Tokenizer:
    def __init__(self, vocab, merges):
        self.vocab = vocab
        self.merges = merges
        self.tokens = {value: key for key, value in vocab.items()}

for (int layer = 0; layer < num_layers; ++layer) {
  x = attention(x, layer);
  x = experts(x, layer);
}
return x;
)";

struct TrainedVocab {
  std::vector<std::string> tokens;                  // id -> byte-level string
  std::vector<std::pair<int32_t, int32_t>> merges;  // in rank order
};

// Classic BPE training: repeatedly merge the most frequent adjacent pair (ties: the smallest
// pair of ids, for determinism) until no pair occurs twice or `max_tokens` is reached.
TrainedVocab Train(int64_t max_tokens) {
  TrainedVocab vocab;
  for (int b = 0; b < 256; ++b) {
    std::string token;
    AppendUtf8(ByteToUnicode(static_cast<uint8_t>(b)), &token);
    vocab.tokens.push_back(std::move(token));
  }
  // The same pre-tokenization the tokenizer will use, so merges never cross a piece boundary.
  absl::StatusOr<std::unique_ptr<PreTokenizer>> pre_tokenizer = ParsePreTokenizer(
      Json{{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}, "");
  MMX_CHECK(pre_tokenizer.ok());
  std::vector<std::string> pieces = {std::string(kCorpus)};
  MMX_CHECK((*pre_tokenizer)->PreTokenize(&pieces).ok());  // the GPT-2 pattern on our corpus
  std::map<std::string, int64_t> piece_counts;
  for (const std::string& piece : pieces) piece_counts[piece] += 1;

  std::map<std::string, int32_t> token_ids;
  for (int32_t id = 0; id < 256; ++id) token_ids[vocab.tokens[id]] = id;
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;  // symbols, count
  for (const auto& [piece, count] : piece_counts) {
    std::vector<int32_t> symbols;
    size_t pos = 0;
    while (pos < piece.size()) {
      size_t length;
      DecodeUtf8(piece, pos, &length);
      symbols.push_back(token_ids.at(piece.substr(pos, length)));
      pos += length;
    }
    words.emplace_back(std::move(symbols), count);
  }

  while (static_cast<int64_t>(vocab.tokens.size()) < max_tokens) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pair_counts;
    for (const auto& [symbols, count] : words) {
      for (size_t i = 0; i + 1 < symbols.size(); ++i) {
        pair_counts[{symbols[i], symbols[i + 1]}] += count;
      }
    }
    std::pair<int32_t, int32_t> best;
    int64_t best_count = 0;
    for (const auto& [pair, count] : pair_counts) {  // map order: the smallest pair wins ties
      if (count > best_count) {
        best = pair;
        best_count = count;
      }
    }
    if (best_count < 2) break;
    const std::string merged = vocab.tokens[best.first] + vocab.tokens[best.second];
    auto [it, inserted] = token_ids.emplace(merged, static_cast<int32_t>(vocab.tokens.size()));
    if (inserted) vocab.tokens.push_back(merged);
    vocab.merges.push_back(best);
    const int32_t merged_id = it->second;
    for (auto& [symbols, count] : words) {
      std::vector<int32_t> next;
      next.reserve(symbols.size());
      for (size_t i = 0; i < symbols.size(); ++i) {
        if (i + 1 < symbols.size() && symbols[i] == best.first && symbols[i + 1] == best.second) {
          next.push_back(merged_id);
          ++i;
        } else {
          next.push_back(symbols[i]);
        }
      }
      symbols = std::move(next);
    }
  }
  return vocab;
}

OrderedJson AddedToken(int64_t id, std::string_view content) {
  return {{"id", id},        {"content", content},  {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", true}};
}

}  // namespace

std::string MakeTestTokenizerJson(int64_t model_vocab_size) {
  MMX_CHECK(model_vocab_size >= kMinTestTokenizerVocabSize);
  const int64_t eos_id = model_vocab_size > kRealEosId + 1 ? kRealEosId : model_vocab_size - 1;
  const int64_t bos_id = eos_id - 1;
  const TrainedVocab trained = Train(/*max_tokens=*/bos_id);

  OrderedJson vocab = OrderedJson::object();
  for (size_t id = 0; id < trained.tokens.size(); ++id) vocab[trained.tokens[id]] = id;
  OrderedJson merges = OrderedJson::array();
  for (const auto& [left, right] : trained.merges) {
    merges.push_back({trained.tokens[left], trained.tokens[right]});
  }
  OrderedJson byte_level = {{"type", "ByteLevel"},
                            {"add_prefix_space", false},
                            {"trim_offsets", true},
                            {"use_regex", true}};
  OrderedJson root = {
      {"version", "1.0"},
      {"truncation", nullptr},
      {"padding", nullptr},
      {"added_tokens", {AddedToken(bos_id, kBos), AddedToken(eos_id, kEos)}},
      {"normalizer", nullptr},
      {"pre_tokenizer", byte_level},
      {"post_processor", byte_level},
      {"decoder", byte_level},
      {"model",
       {{"type", "BPE"},
        {"dropout", nullptr},
        {"unk_token", nullptr},
        {"continuing_subword_prefix", nullptr},
        {"end_of_word_suffix", nullptr},
        {"fuse_unk", false},
        {"byte_fallback", false},
        {"ignore_merges", false},
        {"vocab", std::move(vocab)},
        {"merges", std::move(merges)}}},
  };
  return root.dump(1) + "\n";
}

}  // namespace mmx::tokenizer
