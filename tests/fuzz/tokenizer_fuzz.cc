// tokenizer.json: parsed, then used as a served request would use it (encode text with special
// tokens, as chat and as plain text, and decode ids), so that what a file admits must also run.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "model/tokenizer/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string json(reinterpret_cast<const char*>(data), size);
  auto tokenizer = mmx::tokenizer::Tokenizer::FromJson(json);
  if (!tokenizer.ok()) return 0;
  const std::string text = "Hello, w\xC3\xB6rld! 123  <s>\n\tend \xF0\x9F\x98\x80";
  auto ids = (*tokenizer)->Encode(text);
  (void)(*tokenizer)->EncodeLiteral(text);
  std::vector<int32_t> probe = {0, 1, 2, 255, 256, 1000, -1, (*tokenizer)->vocab_size() - 1};
  if (ids.ok()) probe.insert(probe.end(), ids->begin(), ids->end());
  (void)(*tokenizer)->Decode(probe);
  (void)(*tokenizer)->Decode(probe, /*skip_special_tokens=*/true);
  return 0;
}
