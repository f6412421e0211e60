// Reads the golden set's safetensors files (F32 logits, I64 ids) for tests. The engine's own
// loader (model/safetensors.h) deliberately accepts only weight dtypes, so tests use this.
#pragma once

#include <cstdint>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace mmx::testing {

struct GoldenTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<float> f32;    // when dtype == "F32"
  std::vector<int64_t> i64;  // when dtype == "I64"
};

// Loads every tensor of a small safetensors file. Aborts the test binary on a malformed file:
// the golden files are fixed inputs, not user input.
inline std::map<std::string, GoldenTensor> ReadGolden(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  uint64_t header_len = 0;
  in.read(reinterpret_cast<char*>(&header_len), 8);
  std::string header(header_len, '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  std::string data((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::map<std::string, GoldenTensor> out;
  const nlohmann::json parsed = nlohmann::json::parse(header);
  for (auto it = parsed.begin(); it != parsed.end(); ++it) {
    const std::string& name = it.key();
    const nlohmann::json& info = it.value();
    if (name == "__metadata__") continue;
    GoldenTensor t;
    t.dtype = info["dtype"].get<std::string>();
    t.shape = info["shape"].get<std::vector<int64_t>>();
    const uint64_t begin = info["data_offsets"][0].get<uint64_t>();
    const uint64_t end = info["data_offsets"][1].get<uint64_t>();
    if (t.dtype == "F32") {
      t.f32.resize((end - begin) / 4);
      std::memcpy(t.f32.data(), data.data() + begin, end - begin);
    } else if (t.dtype == "I64") {
      t.i64.resize((end - begin) / 8);
      std::memcpy(t.i64.data(), data.data() + begin, end - begin);
    } else {
      throw std::runtime_error("unexpected dtype " + t.dtype + " in " + path);
    }
    out[name] = std::move(t);
  }
  return out;
}

}  // namespace mmx::testing
