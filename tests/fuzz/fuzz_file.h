// For harnesses whose parser reads a file: the input written to this process's own scratch
// file (reused across runs; libFuzzer runs one input at a time per process).
#pragma once

#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

namespace mmx::fuzz {

// A directory of this process's own under the temporary directory, removed at exit.
inline const std::string& ScratchDir() {
  struct Dir {
    std::string path;
    ~Dir() {
      std::error_code ignored;
      std::filesystem::remove_all(path, ignored);
    }
  };
  static const Dir dir = [] {
    const std::string d = (std::filesystem::temp_directory_path() / ("mmx-fuzz-" + std::to_string(getpid()))).string();
    std::filesystem::create_directories(d);
    return Dir{d};
  }();
  return dir.path;
}

// Writes the input to ScratchDir()/name; returns the path.
inline std::string WriteInput(const std::string& name, const uint8_t* data, size_t size) {
  const std::string path = ScratchDir() + "/" + name;
  std::ofstream(path, std::ios::binary | std::ios::trunc).write(reinterpret_cast<const char*>(data),
                                                                static_cast<std::streamsize>(size));
  return path;
}

}  // namespace mmx::fuzz
