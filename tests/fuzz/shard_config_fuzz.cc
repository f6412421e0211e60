// The shard config (YAML) an operator gives mmx-coord serve / check.
#include <cstddef>
#include <cstdint>
#include <string>

#include "plan/shard_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)mmx::plan::ParseShardConfig(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  return 0;
}
