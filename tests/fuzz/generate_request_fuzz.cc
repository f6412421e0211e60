// A client's GenerateRequest as the coordinator admits it: the bytes parsed as gRPC parses
// them, every string checked for UTF-8, then validated against the test model and a byte-level
// BPE tokenizer (text prompts and chat messages are tokenized).
#include <cstddef>
#include <cstdint>

#include "coordinator/request_factory.h"
#include "coordinator/utf8_fields.h"
#include "tests/fuzz/request_context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mmx::v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!mmx::coordinator::CheckUtf8Fields(request).ok()) return 0;
  (void)mmx::fuzz::Factory().Validate(request);
  return 0;
}
