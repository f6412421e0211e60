// tokenizer.json "post_processor": what Encode(..., add_special_tokens = true) wraps around the
// encoded sequence(s), e.g. a BOS id.
//
// Supported: TemplateProcessing (single and pair templates; special_tokens map), BertProcessing,
// RobertaProcessing, ByteLevel (changes offsets only, so no ids) and Sequence. We track no
// offsets or type ids: a processor maps a list of id sequences (one, or two for a pair) to a
// list of id sequences, which Encode concatenates.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "model/tokenizer/json_fields.h"

namespace mmx::tokenizer {

using IdSequences = std::vector<std::vector<int32_t>>;

class PostProcessor {
 public:
  virtual ~PostProcessor() = default;
  // `sequences` holds one or two sequences. FailedPrecondition for a pair when the processor
  // has no pair form (a TemplateProcessing without "pair"). Thread-safe.
  virtual absl::StatusOr<IdSequences> Process(IdSequences sequences) const = 0;
};

absl::StatusOr<std::unique_ptr<PostProcessor>> ParsePostProcessor(const Json& json,
                                                                  std::string_view path);

}  // namespace mmx::tokenizer
