#include "coordinator/generate_admission.h"

#include "coordinator/utf8_fields.h"

namespace mmx::coordinator {
namespace {

const char* CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case absl::StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case absl::StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kUnavailable: return "UNAVAILABLE";
    case absl::StatusCode::kUnauthenticated: return "UNAUTHENTICATED";
    case absl::StatusCode::kNotFound: return "NOT_FOUND";
    default: return "OTHER";
  }
}

}  // namespace

void CountRefusal(const ServingParts& parts, absl::StatusCode code) {
  if (parts.metrics) parts.metrics->RequestRejected(CodeName(code));
}

absl::StatusOr<Caller> IdentifyCaller(const ServingParts& parts, const std::string& authorization) {
  if (parts.keys == nullptr) return Caller{};
  return parts.keys->Authenticate(authorization);
}

absl::StatusOr<AdmittedRequest> AdmitGenerate(const ServingParts& parts, const Caller& caller,
                                              const v1::GenerateRequest& request) {
  auto refuse = [&](const absl::Status& st) -> absl::Status {
    CountRefusal(parts, st.code());
    return st;
  };
  if (absl::Status st = CheckUtf8Fields(request); !st.ok()) return refuse(st);
  AdmittedRequest admitted;
  if (parts.per_key != nullptr && parts.keys != nullptr) {
    absl::StatusOr<std::shared_ptr<void>> slot = parts.per_key->Acquire(caller.name);
    if (!slot.ok()) return refuse(slot.status());
    admitted.hold = *std::move(slot);
  }
  absl::StatusOr<std::shared_ptr<Request>> made = parts.factory->Make(request);
  if (!made.ok()) return refuse(made.status());
  if (!parts.cluster->ready()) return refuse(absl::UnavailableError(parts.cluster->NotReadyReason()));
  admitted.request = *std::move(made);
  if (absl::Status st = parts.scheduler->Submit(admitted.request); !st.ok()) return refuse(st);
  if (parts.metrics) {
    parts.metrics->RequestAccepted();
    parts.metrics->PromptTokens(static_cast<int64_t>(admitted.request->params().prompt.size()));
  }
  return admitted;
}

}  // namespace mmx::coordinator
