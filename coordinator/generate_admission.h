// How a client's generation request enters the scheduler, whichever API it came by (a gRPC
// Generate call, an HTTP completion): the caller's key, the request's text fields, the caller's
// slot (--max-concurrent-per-key), validation, the cluster's readiness, the queue. Refusals are
// counted in the metrics by code.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "coordinator/serving_parts.h"
#include "mmx/v1/inference.pb.h"

namespace mmx::coordinator {

// The caller whose key `authorization` ("Bearer KEY") carries: UNAUTHENTICATED without a known
// key when keys are on; the anonymous admin when they are off.
absl::StatusOr<Caller> IdentifyCaller(const ServingParts& parts, const std::string& authorization);

struct AdmittedRequest {
  std::shared_ptr<Request> request;  // submitted: the scheduler runs it
  std::shared_ptr<void> hold;        // the caller's slot, to release when the call ends (may be null)
};

// Validates and submits `request`, or says why not: INVALID_ARGUMENT (what to fix),
// RESOURCE_EXHAUSTED (the queue or the caller's slots are full), UNAVAILABLE (not ready).
absl::StatusOr<AdmittedRequest> AdmitGenerate(const ServingParts& parts, const Caller& caller,
                                              const v1::GenerateRequest& request);

// Counts a refusal that happened before AdmitGenerate (an unknown key, a malformed request).
void CountRefusal(const ServingParts& parts, absl::StatusCode code);

}  // namespace mmx::coordinator
