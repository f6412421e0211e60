// The `mmx` command-line client of the Inference API:
//   mmx generate --server HOST:PORT (--prompt TEXT | --prompt-ids 5,17,42) --max-tokens N
//                [--temperature T] [--top-p P] [--top-k K] [--seed S] [--logprobs N]
//                [--stop STR ...] [--ignore-eos] [--json]
//   mmx chat --server HOST:PORT [--system TEXT] [--max-tokens N] ...   (one turn per stdin line)
//   mmx status --server HOST:PORT [--json]
// `generate --prompt` streams the text to the terminal as it arrives; with --prompt-ids the ids.
// `generate --json` prints the same object as `mmx-coord run --json` (plus "logprobs" when
// asked, "text" and "usage" when the server has them). Failures print one line and exit
// non-zero.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "tools/client_channel.h"

namespace mmx::tools {

struct ClientOptions {
  ServerConnection connection;  // --server and the TLS options
  std::string prompt_ids;
  std::string prompt;               // text
  std::string system;               // chat: the system message
  std::vector<std::string> stop;
  bool ignore_eos = false;
  int max_tokens = 16;
  float temperature = 0.f;
  float top_p = 0.f;  // 0 = unset (the server's default, 1)
  int top_k = 0;
  uint64_t seed = 0;
  int logprobs = 0;
  bool json = false;
  int timeout_s = 600;
};

CLI::App* AddGenerateCommand(CLI::App& app, ClientOptions* options);
CLI::App* AddStatusCommand(CLI::App& app, ClientOptions* options);
CLI::App* AddChatCommand(CLI::App& app, ClientOptions* options);
absl::Status RunGenerateClient(const ClientOptions& options);
absl::Status RunChatClient(const ClientOptions& options);
absl::Status RunStatusClient(const ClientOptions& options);

}  // namespace mmx::tools
