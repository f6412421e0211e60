// RunWorker: one mmx-worker process: its control session over gRPC to the coordinator at
// --coordinator, its data plane over UCX, the session itself in worker/worker_runtime.h.
#pragma once

#include "absl/status/status.h"
#include "worker/worker_runtime.h"

namespace mmx::worker {

// Runs until the session ends. Returns an error that says what went wrong (unreachable
// coordinator, rejected registration, failed load, lost coordinator: IsCoordinatorLost).
// `leave` (may be null): SIGTERM while serving asks the coordinator to let this worker go.
// `cache` (may be null): the shard kept from an earlier session of this process.
absl::Status RunWorker(const WorkerOptions& options, LeaveRequest* leave = nullptr, ShardCache* cache = nullptr);

}  // namespace mmx::worker
