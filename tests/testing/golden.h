// The golden set (tests/data/golden/tiny-a: the official implementation's outputs on a tiny
// random checkpoint, see its README) and the helpers every test that holds to it shares.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"
#include "tests/testing/golden_reader.h"

namespace mmx::testing {

// The golden checkpoint directory; MMX_TEST_DATA_DIR in the environment overrides the build's
// path (the GPU kit's binaries run from another checkout, tests/gpu/pack.sh).
inline const std::string& GoldenDir() {
  static const std::string dir = [] {
    const char* env = std::getenv("MMX_TEST_DATA_DIR");
    return std::string(env != nullptr && *env != '\0' ? env : MMX_TEST_DATA_DIR) + "/golden/tiny-a";
  }();
  return dir;
}

inline std::vector<int32_t> GoldenPrompt(const std::string& name) {
  std::ifstream in(GoldenDir() + "/golden/prompts.json");
  return nlohmann::json::parse(in)["prompts"][name].get<std::vector<int32_t>>();
}

inline std::map<std::string, GoldenTensor> ReadGoldenFile(const std::string& file) {
  return ReadGolden(GoldenDir() + "/golden/" + file);
}

// Max |a - b| over the first n values.
inline float MaxAbsDiff(const float* a, const float* b, size_t n) {
  float worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

// Mean |a - b| over n values.
inline double MeanAbsDiff(const float* a, const float* b, size_t n) {
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += std::fabs(static_cast<double>(a[i]) - b[i]);
  return n > 0 ? sum / static_cast<double>(n) : 0;
}

}  // namespace mmx::testing
