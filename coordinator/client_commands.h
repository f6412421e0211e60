// The `mmx` command-line client of the Inference API:
//   mmx generate --server HOST:PORT --prompt-ids 5,17,42 --max-tokens N [--temperature T]
//                [--top-p P] [--top-k K] [--seed S] [--logprobs N] [--json]
//   mmx status --server HOST:PORT [--json]
// `generate --json` prints the same object as `mmx-coord run --json` (plus "logprobs" when
// asked). Failures print one line and exit non-zero.
#pragma once

#include <cstdint>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace mmx::coordinator {

struct ClientOptions {
  std::string server = "127.0.0.1:7070";
  std::string prompt_ids;
  int max_tokens = 16;
  float temperature = 0.f;
  float top_p = 1.f;
  int top_k = 0;
  uint64_t seed = 0;
  int logprobs = 0;
  bool json = false;
  int timeout_s = 600;
};

CLI::App* AddGenerateCommand(CLI::App& app, ClientOptions* options);
CLI::App* AddStatusCommand(CLI::App& app, ClientOptions* options);
absl::Status RunGenerateClient(const ClientOptions& options);
absl::Status RunStatusClient(const ClientOptions& options);

}  // namespace mmx::coordinator
