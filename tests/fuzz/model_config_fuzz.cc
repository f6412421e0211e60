// config.json of a checkpoint.
#include <cstddef>
#include <cstdint>
#include <string>

#include "model/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto config = mmx::model::ModelConfig::FromJson(text);
  if (config.ok()) (void)mmx::model::ModelConfig::FromJson(config->ToJson());  // round trip
  return 0;
}
