// Load progress for people: a redrawn bar on a terminal, one line per 10% otherwise (logs).
#pragma once

#include <cstdint>
#include <string>

namespace mmx::worker {

class ProgressReporter {
 public:
  explicit ProgressReporter(std::string label);
  void Update(int64_t done, int64_t total);
  void Done();

 private:
  std::string label_;
  bool tty_;
  int last_decile_ = -1;
  int last_percent_ = -1;
};

}  // namespace mmx::worker
