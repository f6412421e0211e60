// The cluster spec (YAML) mmx-coord plan reads.
#include <cstddef>
#include <cstdint>
#include <string>

#include "plan/cluster_spec.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)mmx::plan::ParseClusterSpec(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
  return 0;
}
