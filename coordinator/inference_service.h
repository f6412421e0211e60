// The public API (inference.proto): Generate streams tokens and their text as the scheduler
// produces them; the job RPCs go to the JobRunner and JobStore; GetClusterStatus reports the
// workers and serving statistics (per-worker detail for admins only, with API keys: api_keys.h).
// Without a known API key (when keys are on) every call is UNAUTHENTICATED. Bad requests get
// INVALID_ARGUMENT saying what to fix; a full
// queue RESOURCE_EXHAUSTED; a cluster that is not ready, or a worker lost mid-request,
// UNAVAILABLE.
#pragma once

#include <string>

#include "coordinator/serving_parts.h"
#include "proto/grpc_status.h"
#include "mmx/v1/inference.grpc.pb.h"

namespace mmx::coordinator {

// Generate uses gRPC's callback API (a stream woken by the request, coordinator/
// generate_stream.h); the other methods are plain synchronous calls.
class InferenceService final : public v1::Inference::WithCallbackMethod_Generate<v1::Inference::Service> {
 public:
  using Parts = ServingParts;
  explicit InferenceService(Parts parts) : p_(std::move(parts)) {}

  grpc::ServerWriteReactor<v1::GenerateResponse>* Generate(grpc::CallbackServerContext* context,
                                                           const v1::GenerateRequest* request) override;
  grpc::Status GetClusterStatus(grpc::ServerContext* context, const v1::GetClusterStatusRequest* request,
                                v1::ClusterStatus* response) override;
  grpc::Status SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request, v1::Job* response) override;
  grpc::Status GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request, v1::Job* response) override;
  grpc::Status CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request, v1::Job* response) override;
  grpc::Status ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                        v1::ListJobsResponse* response) override;
  // Synchronous: a following stream holds one of the server's threads while it waits (it polls
  // the job store every 200 ms once it has caught up).
  grpc::Status StreamJobResults(grpc::ServerContext* context, const v1::StreamJobResultsRequest* request,
                                grpc::ServerWriter<v1::JobResult>* writer) override;

 private:
  grpc::Status JobsOff() const;
  // The caller, from its `authorization` metadata (UNAUTHENTICATED without a known key).
  absl::StatusOr<Caller> Identify(const grpc::ServerContextBase& context) const;
  // `job_id` as `caller` may see it: another user's job is NOT_FOUND, like an unknown one.
  absl::StatusOr<v1::Job> VisibleJob(const Caller& caller, const std::string& job_id, bool with_results,
                                     const JobStore::ResultsPage& page = {}) const;
  Parts p_;
};

}  // namespace mmx::coordinator
