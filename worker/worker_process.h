// WorkerProcess: the life of one mmx-worker. It reaches the coordinator (retrying: workers may
// start first), registers by name, receives its assignment, loads only its shard (progress on
// stderr and to the coordinator), creates its data-plane endpoint, reports ready, applies peer
// tables, and serves steps and expert dispatches until the coordinator goes away or rejects it.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace mmx::worker {

struct WorkerOptions {
  std::string coordinator;   // HOST:PORT
  std::string name;
  std::string device = "cpu";
  int threads = 0;           // 0 = all cores
  bool bf16_activations = false;  // batched GEMMs round activations to bf16 (kernels.h)
  absl::Duration connect_timeout = absl::Seconds(120);
  absl::Duration reply_timeout = absl::Seconds(30);
};

// Runs until the session ends. Returns an error that says what went wrong (unreachable
// coordinator, rejected registration, failed load, lost coordinator).
absl::Status RunWorker(const WorkerOptions& options);

// The session ended after the worker was serving: the coordinator exited or was killed.
bool IsCoordinatorLost(const absl::Status& status);

}  // namespace mmx::worker
