// `mmx` batch-job commands (the Inference service's job RPCs):
//   mmx submit FILE.jsonl --server HOST:PORT [--idempotency-key KEY] [--wait] [--json]
//       one GenerateRequest per line, in proto3 JSON ({"prompt": "...", "sampling":
//       {"max_tokens": 16}}); prints the job id (with --wait, waits and prints the results)
//   mmx job ID [--json]     state, counts and the results so far
//   mmx jobs [--json]       the newest jobs
//   mmx cancel ID           cancels a queued or running job
// Failures print one line and exit non-zero.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "tools/client_channel.h"
#include "absl/status/status.h"

namespace mmx::tools {

class JobCommands {
 public:
  explicit JobCommands(CLI::App& app);
  bool parsed() const;
  absl::Status Run() const;

 private:
  absl::Status Submit() const;
  absl::Status Show() const;
  absl::Status List() const;
  absl::Status Cancel() const;

  ServerConnection connection_;
  std::string file_, job_id_, idempotency_key_, results_file_;
  bool json_ = false, wait_ = false;
  int limit_ = 20;
  CLI::App *submit_, *job_, *jobs_, *cancel_;
};

}  // namespace mmx::tools
