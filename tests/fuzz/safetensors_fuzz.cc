// The safetensors header of a checkpoint shard: its 8-byte length, JSON, dtypes, shapes and
// data offsets. Every tensor the header admits is read end to end: an offset past the file
// would fault.
#include <cstddef>
#include <cstdint>

#include "model/safetensors.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path = mmx::fuzz::WriteInput("model.safetensors", data, size);
  auto file = mmx::model::SafetensorsFile::Open(path);
  if (!file.ok()) return 0;
  volatile uint8_t sink = 0;
  for (const auto& [name, info] : (*file)->tensors()) {
    const auto* bytes = static_cast<const uint8_t*>(info.data);
    if (info.num_bytes > 0) sink = sink ^ bytes[0] ^ bytes[info.num_bytes - 1];
  }
  return 0;
}
