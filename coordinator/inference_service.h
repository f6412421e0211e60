// The public API (inference.proto): Generate streams tokens as the scheduler produces them;
// GetClusterStatus reports the workers. Bad requests get INVALID_ARGUMENT saying what to fix;
// a cluster that is not ready, or a worker lost mid-request, gives UNAVAILABLE.
#pragma once

#include <atomic>

#include "coordinator/cluster.h"
#include "coordinator/scheduler.h"
#include "mmx/v1/inference.grpc.pb.h"

namespace mmx::coordinator {

class InferenceService final : public v1::Inference::Service {
 public:
  InferenceService(Cluster* cluster, Scheduler* scheduler) : cluster_(cluster), scheduler_(scheduler) {}

  grpc::Status Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                        grpc::ServerWriter<v1::GenerateResponse>* writer) override;
  grpc::Status GetClusterStatus(grpc::ServerContext* context, const v1::GetClusterStatusRequest* request,
                                v1::ClusterStatus* response) override;

 private:
  Cluster* cluster_;
  Scheduler* scheduler_;
  std::atomic<uint64_t> next_request_{1};
};

// absl::Status -> grpc::Status (the codes are the same numbers).
grpc::Status ToGrpcStatus(const absl::Status& status);

// Checks a GenerateRequest against the model and turns it into scheduler parameters.
absl::StatusOr<Request::Params> ValidateGenerate(const v1::GenerateRequest& request,
                                                 const model::ModelConfig& config);

}  // namespace mmx::coordinator
