// Test tokenizers for random-weight models (mmx-mkmodel): a small, valid, deterministic
// GPT-2-style byte-level BPE tokenizer.json sized to a model's vocabulary.
//
// Layout: ids 0..255 are the 256 byte tokens (in byte order), then the tokens of merges
// learned by a tiny BPE trainer over a short built-in English and code text (so that common
// words like " the" are single tokens), at most model_vocab_size - 2 tokens in all; then the
// special added tokens <beginning_of_sentence> and <end_of_sentence> at the two highest ids
// below model_vocab_size, except that past 200021 they sit at 200019 and 200020, where the real
// model has its EOS (MODEL.md §8). Ids in between are undefined. Not a real vocabulary: it
// exists so that the text path can run end to end on test models.
#pragma once

#include <cstdint>
#include <string>

namespace mmx::tokenizer {

inline constexpr int64_t kMinTestTokenizerVocabSize = 258;  // 256 byte tokens + 2 specials

// The tokenizer.json text; the same size always gives the same bytes. Requires
// model_vocab_size >= kMinTestTokenizerVocabSize (callers check; MMX_CHECK otherwise).
std::string MakeTestTokenizerJson(int64_t model_vocab_size);

}  // namespace mmx::tokenizer
