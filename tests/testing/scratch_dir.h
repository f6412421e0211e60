// Fresh directories under /tmp for one test process, removed with their contents when the
// process exits normally. ctest runs every test as a process of its own, so a directory made
// per process and kept was one per test: hundreds left in /tmp by each full run.
#pragma once

#include <stdlib.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include <filesystem>
#include <mutex>
#include <string>
#include <system_error>
#include <vector>

namespace mmx::testing {

// Makes /tmp/mmx-WHAT-XXXXXX (mkdtemp) and returns its path; aborts, saying why, if it cannot.
inline std::string ScratchDir(const std::string& what) {
  struct Made {
    std::mutex mu;
    std::vector<std::string> dirs;
    ~Made() {
      for (const std::string& d : dirs) {
        std::error_code ignored;  // a directory someone removed already is fine
        std::filesystem::remove_all(d, ignored);
      }
    }
  };
  static Made made;  // destroyed at exit, after the tests that used the directories
  std::string tmpl = "/tmp/mmx-" + what + "-XXXXXX";
  if (mkdtemp(tmpl.data()) == nullptr) {
    std::fprintf(stderr, "ScratchDir: cannot make %s: %s\n", tmpl.c_str(), std::strerror(errno));
    std::abort();
  }
  std::lock_guard<std::mutex> lock(made.mu);
  made.dirs.push_back(tmpl);
  return tmpl;
}

}  // namespace mmx::testing
