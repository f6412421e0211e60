// ServingParts: what the public APIs (gRPC's Inference service, the OpenAI-compatible HTTP API)
// share. One scheduler behind both, so requests of either kind batch together.
#pragma once

#include <string>

#include "coordinator/api_keys.h"
#include "coordinator/cluster.h"
#include "coordinator/job_runner.h"
#include "coordinator/job_store.h"
#include "coordinator/metrics.h"
#include "coordinator/per_key_limit.h"
#include "coordinator/request_factory.h"
#include "coordinator/scheduler.h"

namespace mmx::coordinator {

struct ServingParts {
  Cluster* cluster = nullptr;
  Scheduler* scheduler = nullptr;
  RequestFactory* factory = nullptr;
  Metrics* metrics = nullptr;
  JobStore* jobs = nullptr;        // null: jobs are off (no --state-dir)
  JobRunner* job_runner = nullptr;
  std::string metrics_address;     // for ClusterStatus
  const ApiKeys* keys = nullptr;   // null: every caller is an anonymous admin (no --api-keys)
  PerKeyLimit* per_key = nullptr;  // generation calls open per key (null: no limit)
};

}  // namespace mmx::coordinator
