#include "coordinator/inference_service.h"

#include "absl/strings/str_cat.h"

namespace mmx::coordinator {
namespace {

const char* CodeName(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument: return "INVALID_ARGUMENT";
    case absl::StatusCode::kFailedPrecondition: return "FAILED_PRECONDITION";
    case absl::StatusCode::kResourceExhausted: return "RESOURCE_EXHAUSTED";
    case absl::StatusCode::kUnavailable: return "UNAVAILABLE";
    default: return "OTHER";
  }
}

}  // namespace

grpc::Status InferenceService::Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                                        grpc::ServerWriter<v1::GenerateResponse>* writer) {
  auto refuse = [&](const absl::Status& st) {
    if (p_.metrics) p_.metrics->RequestRejected(CodeName(st.code()));
    return ToGrpcStatus(st);
  };
  absl::StatusOr<std::shared_ptr<Request>> made = p_.factory->Make(*request);
  if (!made.ok()) return refuse(made.status());
  if (!p_.cluster->ready()) return refuse(absl::UnavailableError(p_.cluster->NotReadyReason()));
  std::shared_ptr<Request> r = *std::move(made);
  if (absl::Status st = p_.scheduler->Submit(r); !st.ok()) return refuse(st);
  if (p_.metrics) {
    p_.metrics->RequestAccepted();
    p_.metrics->PromptTokens(static_cast<int64_t>(r->params().prompt.size()));
  }
  const bool want_logprobs = r->params().logprobs > 0;
  std::vector<TokenEvent> tokens, rest;
  int64_t completion_tokens = 0;
  while (true) {
    r->Next(&tokens, absl::Milliseconds(200));
    if (context->IsCancelled()) {
      r->Cancel();  // the scheduler frees the sequence at its next iteration
      return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    }
    // Once done, no event is added any more: drain what arrived since the last Next.
    const bool done = r->done();
    if (done) {
      r->Next(&rest, absl::ZeroDuration());
      tokens.insert(tokens.end(), rest.begin(), rest.end());
    }
    if (tokens.empty() && !done) continue;
    v1::GenerateResponse response;
    std::string text;
    for (const TokenEvent& t : tokens) {
      response.add_token_ids(t.token_id);
      response.add_logprobs(t.logprob);
      text += t.text;
      if (want_logprobs) {
        v1::TopLogprobs* top = response.add_top_logprobs();
        top->mutable_token_ids()->Add(t.top_ids.begin(), t.top_ids.end());
        top->mutable_logprobs()->Add(t.top_logprobs.begin(), t.top_logprobs.end());
      }
    }
    completion_tokens += static_cast<int64_t>(tokens.size());
    response.set_text(std::move(text));
    const absl::Status final_status = done ? r->final_status() : absl::OkStatus();
    if (done && final_status.ok()) {
      response.set_finish_reason(r->finish_reason());
      response.mutable_usage()->set_prompt_tokens(static_cast<int32_t>(r->params().prompt.size()));
      response.mutable_usage()->set_completion_tokens(static_cast<int32_t>(completion_tokens));
    }
    if ((response.token_ids_size() > 0 || done) && !(done && !final_status.ok() && tokens.empty())) {
      if (!writer->Write(response)) {
        r->Cancel();
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      }
    }
    if (done) return ToGrpcStatus(final_status);
  }
}

grpc::Status InferenceService::GetClusterStatus(grpc::ServerContext*, const v1::GetClusterStatusRequest*,
                                                v1::ClusterStatus* response) {
  *response = p_.cluster->Status();
  response->set_running_requests(p_.scheduler->running());
  if (p_.metrics) *response->mutable_stats() = p_.metrics->Stats();
  response->mutable_stats()->set_queue_depth(p_.scheduler->queued());
  response->set_metrics_address(p_.metrics_address);
  return grpc::Status::OK;
}

grpc::Status InferenceService::JobsOff() const {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "batch jobs are off on this server: start mmx-coord serve with --state-dir DIR");
}

grpc::Status InferenceService::SubmitJob(grpc::ServerContext*, const v1::SubmitJobRequest* request, v1::Job* response) {
  if (!p_.job_runner) return JobsOff();
  absl::StatusOr<v1::Job> job = p_.job_runner->Submit(*request);
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status InferenceService::GetJob(grpc::ServerContext*, const v1::GetJobRequest* request, v1::Job* response) {
  if (!p_.jobs) return JobsOff();
  if (request->job_id().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give a job_id");
  absl::StatusOr<v1::Job> job = p_.jobs->Get(request->job_id(), !request->omit_results());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status InferenceService::CancelJob(grpc::ServerContext*, const v1::CancelJobRequest* request, v1::Job* response) {
  if (!p_.job_runner) return JobsOff();
  if (request->job_id().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give a job_id");
  absl::StatusOr<v1::Job> job = p_.job_runner->Cancel(request->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status InferenceService::ListJobs(grpc::ServerContext*, const v1::ListJobsRequest* request,
                                        v1::ListJobsResponse* response) {
  if (!p_.jobs) return JobsOff();
  if (request->limit() < 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "limit must be >= 0");
  absl::StatusOr<std::vector<v1::Job>> jobs = p_.jobs->List(request->limit());
  if (!jobs.ok()) return ToGrpcStatus(jobs.status());
  for (v1::Job& j : *jobs) *response->add_jobs() = std::move(j);
  return grpc::Status::OK;
}

}  // namespace mmx::coordinator
