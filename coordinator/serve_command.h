// `mmx-coord serve --shard-config FILE --listen HOST:PORT`: runs the coordinator of a cluster.
// `mmx-coord serve --model DIR --expect-workers N ...`: the same, planning the shard config from
// the capabilities the first N workers report when they register.
// It validates the shard config against the checkpoint before anything loads, waits for the
// workers to register, load and connect, then serves the Inference API until SIGINT/SIGTERM.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace mmx::coordinator {

struct ServeOptions {
  std::string shard_config;
  // Without a shard config: plan from the first `expect_workers` workers that register.
  std::string model_dir;
  int expect_workers = 0;
  int64_t max_context = 0;  // serving target for live planning (0 = the planner's default)
  std::string listen = "127.0.0.1:7070";
  int max_sequences = 32;
  int prefill_chunk = 256;
  int micro_batches = 0;  // 0 = automatic
  int threads = 0;
};

CLI::App* AddServeCommand(CLI::App& app, ServeOptions* options);
absl::Status Serve(const ServeOptions& options);

// `mmx-coord check --shard-config FILE [--list-workers]`: validates a shard config against its
// checkpoint (headers only) exactly as serve does, then prints a summary or the worker names.
struct CheckOptions {
  std::string shard_config;
  bool list_workers = false;
  bool list_expert_hosts = false;
};
CLI::App* AddCheckCommand(CLI::App& app, CheckOptions* options);
absl::Status Check(const CheckOptions& options);

}  // namespace mmx::coordinator
