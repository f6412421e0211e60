// The checkpoint index (model.safetensors.index.json: weight_map from tensor to shard file), in
// a directory holding the test model's config.json and shards, so that an index that parses
// goes on to open shards and match tensors against the config.
#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <string>

#include "model/checkpoint.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool linked = [] {
    for (const char* name : {"config.json", "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}) {
      const std::filesystem::path link = std::filesystem::path(mmx::fuzz::ScratchDir()) / name;
      std::filesystem::remove(link);
      std::filesystem::create_symlink(std::filesystem::path(MMX_FUZZ_MODEL_DIR) / name, link);
    }
    return true;
  }();
  (void)linked;
  mmx::fuzz::WriteInput("model.safetensors.index.json", data, size);
  auto checkpoint = mmx::model::Checkpoint::Open(mmx::fuzz::ScratchDir());
  if (checkpoint.ok()) (void)(*checkpoint)->ValidateAgainstConfig();
  return 0;
}
