// Running the project's programs from tests, and reading the files they write: one set of
// helpers for every test that starts a process.
#pragma once

#include <string>
#include <vector>

#include "absl/time/time.h"

namespace mmx::testing {

// The binaries of this build (build/bin/NAME).
std::string BinaryPath(const std::string& name);

struct ProcessResult {
  int exit_code = -1;   // -1: killed (timed out) or died by a signal
  bool timed_out = false;
  std::string out;      // standard output
  std::string err;      // standard error
  std::string output;   // both, in the order written (one file for both streams)
};

// Runs a program to completion, killing it after `timeout`, in `cwd` when given, with `input`
// on its standard input. `separate_streams`: `out` and `err` are captured apart (`output` is
// then their concatenation); else both go to `output` in the order written.
ProcessResult RunToExit(const std::vector<std::string>& argv, absl::Duration timeout, const std::string& cwd = "",
                        const std::string& input = "", bool separate_streams = false);

// The same through the shell (quoting and redirections as written), out and err apart.
ProcessResult RunShell(const std::string& command, absl::Duration timeout);

// A file's bytes ("" if it cannot be read).
std::string ReadFile(const std::string& path);

// A fresh path under the test's temporary directory (the file is not created).
std::string TempPath(const std::string& name);

}  // namespace mmx::testing
