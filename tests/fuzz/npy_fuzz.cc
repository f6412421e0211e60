// The .npy reader (golden activations and logits).
#include <cstddef>
#include <cstdint>

#include "base/npy.h"
#include "tests/fuzz/fuzz_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)mmx::ReadNpyF32(mmx::fuzz::WriteInput("x.npy", data, size));
  return 0;
}
