// TextStream: turns one request's generated ids into text deltas for its stream, and finds its
// stop strings. Deltas are valid UTF-8 (the incremental decoder never splits a character) and
// hold back the last (longest stop string - 1) bytes, so that text which turns out to begin a
// stop string is never sent: when a stop string completes, the text before it is released and
// the rest, the stop string included, is dropped (finish_reason "stop").
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.h"

namespace mmx::coordinator {

class TextStream {
 public:
  // `tokenizer` must outlive the stream. Special tokens are left out of the text.
  TextStream(const tokenizer::Tokenizer& tokenizer, std::vector<std::string> stop_strings);

  // The text that can be released once `id` was generated; *stopped when a stop string
  // completed (everything after it is discarded; later calls return "").
  std::string Add(int32_t id, bool* stopped);
  // Releases what is held back (the request ended for another reason). Also stops at a stop
  // string that completes only now.
  std::string Finish(bool* stopped);

  const std::string& text() const { return released_; }  // everything released so far

 private:
  std::string Release(bool final, bool* stopped);

  tokenizer::IncrementalDecoder decoder_;
  std::vector<std::string> stops_;
  size_t hold_ = 0;          // bytes to hold back: longest stop string - 1
  std::string pending_;      // decoded, not yet released
  std::string released_;
  bool stopped_ = false;
};

// Largest n <= limit such that text[0, n) ends on a UTF-8 character boundary.
size_t Utf8Boundary(const std::string& text, size_t limit);

}  // namespace mmx::coordinator
