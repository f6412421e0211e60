// `mmx-coord serve --shard-config FILE --listen HOST:PORT`: runs the coordinator of a cluster.
// `mmx-coord serve --model DIR --expect-workers N ...`: the same, planning the shard config from
// the capabilities the first N workers report when they register.
// It validates the shard config against the checkpoint before anything loads, waits for the
// workers to register, load and connect, then serves the Inference API until SIGINT/SIGTERM.
#pragma once

#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "proto/tls_credentials.h"

namespace mmx::tools {

struct ServeOptions {
  std::string shard_config;
  // Without a shard config: plan from the first `expect_workers` workers that register.
  std::string model_dir;
  int expect_workers = 0;
  int64_t max_context = 0;  // serving target for live planning (0 = the planner's default)
  std::string listen = "127.0.0.1:7070";
  int max_sequences = 32;     // --max-concurrent
  int max_queue = 1024;
  double max_job_share = 0.75;  // of max_sequences, batch jobs' requests may hold
  int max_prompt_tokens = 32768;
  int max_tokens = 4096;
  int prefill_chunk = 256;
  int max_step_tokens = 1024;
  int micro_batches = 0;  // 0 = automatic
  int steps_in_flight = 0;  // 0 = automatic
  std::string kv_dtype;     // bf16 | fp32; "" = the shard config's serving.kv_dtype (bf16 by default)
  std::string wire_dtype;   // fp32 | bf16; "" = the shard config's serving.wire_dtype (fp32 by default)
  double failover_timeout_s = 300;  // paused requests wait this long for a lost worker's entry
  double heartbeat_timeout_s = 10;  // a worker silent this long is lost
  double shutdown_timeout_s = 30;   // SIGTERM: running requests may finish within this
  int threads = 0;
  std::string state_dir;       // SQLite job store; "" = jobs off
  std::string metrics_listen;  // "" = the gRPC host, port + 1 ("off" = no metrics server)
  std::string tokenizer;       // tokenizer.json; "" = the checkpoint's, if it has one
  rpc::ServerTlsFiles tls;     // --tls-cert, --tls-key, --tls-client-ca ("" = plain text)
  bool insecure = false;       // plain text on a non-loopback --listen address
  std::string api_keys;        // NAME ROLE KEY per line; "" = open API (coordinator/api_keys.h)
  std::string join_token_file; // workers must show this token to register; "" = any worker
  std::string control_listen;  // the worker control plane's own HOST:PORT; "" = on --listen
  std::string data_interface;  // the data plane's network devices; "" = the control address's interface
  int max_concurrent_per_key = 0;  // Generate calls open per API key (0 = no limit)
  std::string http_listen;         // the OpenAI-compatible HTTP API's HOST:PORT; "" = off
  std::string served_model_name;   // its model name; "" = the checkpoint directory's name
  int http_threads = 0;            // its handler threads; 0 = the scheduler's capacity + spares
};

CLI::App* AddServeCommand(CLI::App& app, ServeOptions* options);
absl::Status Serve(const ServeOptions& options);

// `mmx-coord check --shard-config FILE [--list-workers]`: validates a shard config against its
// checkpoint (headers only) exactly as serve does, then prints a summary or the worker names.
struct CheckOptions {
  std::string shard_config;
  bool list_workers = false;
  bool list_devices = false;
  bool list_expert_hosts = false;
};
CLI::App* AddCheckCommand(CLI::App& app, CheckOptions* options);
absl::Status Check(const CheckOptions& options);

}  // namespace mmx::tools
