#include "worker/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mmx::worker {

ProgressReporter::ProgressReporter(std::string label) : label_(std::move(label)), tty_(isatty(STDERR_FILENO)) {}

void ProgressReporter::Update(int64_t done, int64_t total) {
  const int percent = total > 0 ? static_cast<int>(100 * done / total) : 100;
  const double gib_done = done / double(1 << 30), gib_total = total / double(1 << 30);
  if (tty_) {
    if (percent == last_percent_) return;
    last_percent_ = percent;
    const int filled = percent * 30 / 100;
    std::fprintf(stderr, "\r%s [%.*s%*s] %3d%% %.2f/%.2f GiB", label_.c_str(), filled,
                 "##############################", 30 - filled, "", percent, gib_done, gib_total);
    std::fflush(stderr);
    return;
  }
  const int decile = percent / 10;
  if (decile == last_decile_) return;
  last_decile_ = decile;
  std::fprintf(stderr, "%s %d%% (%.2f of %.2f GiB)\n", label_.c_str(), percent, gib_done, gib_total);
}

void ProgressReporter::Done() {
  if (tty_) std::fprintf(stderr, "\n");
}

}  // namespace mmx::worker
