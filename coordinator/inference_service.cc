#include "coordinator/inference_service.h"

#include <chrono>
#include <thread>

#include "absl/strings/str_cat.h"
#include "coordinator/generate_admission.h"
#include "coordinator/generate_stream.h"
#include "coordinator/utf8_fields.h"

namespace mmx::coordinator {

// A Generate call refused before it started: ends at once with the status.
class RefusedGenerate final : public grpc::ServerWriteReactor<v1::GenerateResponse> {
 public:
  explicit RefusedGenerate(const grpc::Status& status) { Finish(status); }
  void OnDone() override { delete this; }
};

grpc::ServerWriteReactor<v1::GenerateResponse>* InferenceService::Generate(grpc::CallbackServerContext* context,
                                                                           const v1::GenerateRequest* request) {
  absl::StatusOr<Caller> caller = Identify(*context);
  if (!caller.ok()) {
    CountRefusal(p_, caller.status().code());
    return new RefusedGenerate(ToGrpcStatus(caller.status()));
  }
  absl::StatusOr<AdmittedRequest> admitted = AdmitGenerate(p_, *caller, *request);
  if (!admitted.ok()) return new RefusedGenerate(ToGrpcStatus(admitted.status()));
  return GenerateStream::Start(std::move(admitted->request), p_.metrics, std::move(admitted->hold));
}

absl::StatusOr<Caller> InferenceService::Identify(const grpc::ServerContextBase& context) const {
  const auto& metadata = context.client_metadata();
  const auto it = metadata.find("authorization");
  return IdentifyCaller(p_, it == metadata.end() ? "" : std::string(it->second.data(), it->second.size()));
}

absl::StatusOr<v1::Job> InferenceService::VisibleJob(const Caller& caller, const std::string& job_id,
                                                     bool with_results, const JobStore::ResultsPage& page) const {
  absl::StatusOr<v1::Job> job = p_.jobs->Get(job_id, with_results, page);
  if (job.ok() && !caller.admin && job->owner() != caller.name) {
    return absl::NotFoundError(absl::StrCat("no job '", job_id, "' (ListJobs shows the jobs this server has)"));
  }
  return job;
}

grpc::Status InferenceService::GetClusterStatus(grpc::ServerContext* context, const v1::GetClusterStatusRequest*,
                                                v1::ClusterStatus* response) {
  absl::StatusOr<Caller> caller = Identify(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  *response = p_.cluster->Status();
  response->set_running_requests(p_.scheduler->running());
  if (p_.metrics) *response->mutable_stats() = p_.metrics->Stats();
  response->mutable_stats()->set_queue_depth(p_.scheduler->queued());
  response->set_metrics_address(p_.metrics_address);
  if (!caller->admin) {  // which machines hold what is the operators' business
    response->clear_workers();
    response->mutable_stats()->clear_worker_step_p50_s();
    response->clear_metrics_address();
  }
  return grpc::Status::OK;
}

grpc::Status InferenceService::JobsOff() const {
  return grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                      "batch jobs are off on this server: start mmx-coord serve with --state-dir DIR");
}

grpc::Status InferenceService::SubmitJob(grpc::ServerContext* context, const v1::SubmitJobRequest* request,
                                         v1::Job* response) {
  absl::StatusOr<Caller> caller = Identify(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status st = CheckUtf8Fields(*request); !st.ok()) return ToGrpcStatus(st);
  if (!p_.job_runner) return JobsOff();
  absl::StatusOr<v1::Job> job = p_.job_runner->Submit(*request, caller->name);
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status InferenceService::GetJob(grpc::ServerContext* context, const v1::GetJobRequest* request,
                                      v1::Job* response) {
  absl::StatusOr<Caller> caller = Identify(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status st = CheckUtf8Fields(*request); !st.ok()) return ToGrpcStatus(st);
  if (!p_.jobs) return JobsOff();
  if (request->job_id().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give a job_id");
  absl::StatusOr<JobStore::ResultsPage> page = ResultsPageOf(*request);
  if (!page.ok()) return ToGrpcStatus(page.status());
  absl::StatusOr<v1::Job> job = VisibleJob(*caller, request->job_id(), !request->omit_results(), *page);
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status InferenceService::CancelJob(grpc::ServerContext* context, const v1::CancelJobRequest* request,
                                         v1::Job* response) {
  absl::StatusOr<Caller> caller = Identify(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status st = CheckUtf8Fields(*request); !st.ok()) return ToGrpcStatus(st);
  if (!p_.job_runner) return JobsOff();
  if (request->job_id().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give a job_id");
  if (absl::StatusOr<v1::Job> visible = VisibleJob(*caller, request->job_id(), false); !visible.ok()) {
    return ToGrpcStatus(visible.status());
  }
  absl::StatusOr<v1::Job> job = p_.job_runner->Cancel(request->job_id());
  if (!job.ok()) return ToGrpcStatus(job.status());
  *response = *std::move(job);
  return grpc::Status::OK;
}

grpc::Status InferenceService::ListJobs(grpc::ServerContext* context, const v1::ListJobsRequest* request,
                                        v1::ListJobsResponse* response) {
  absl::StatusOr<Caller> caller = Identify(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (!p_.jobs) return JobsOff();
  if (request->limit() < 0) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "limit must be >= 0");
  absl::StatusOr<std::vector<v1::Job>> jobs = p_.jobs->List(request->limit(), caller->admin ? nullptr : &caller->name);
  if (!jobs.ok()) return ToGrpcStatus(jobs.status());
  for (v1::Job& j : *jobs) *response->add_jobs() = std::move(j);
  return grpc::Status::OK;
}

grpc::Status InferenceService::StreamJobResults(grpc::ServerContext* context,
                                                const v1::StreamJobResultsRequest* request,
                                                grpc::ServerWriter<v1::JobResult>* writer) {
  absl::StatusOr<Caller> caller = Identify(*context);
  if (!caller.ok()) return ToGrpcStatus(caller.status());
  if (absl::Status st = CheckUtf8Fields(*request); !st.ok()) return ToGrpcStatus(st);
  if (!p_.jobs) return JobsOff();
  if (request->job_id().empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "give a job_id");
  if (request->from_index() < 0) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "from_index must be >= 0 (the first index wanted)");
  }
  if (absl::StatusOr<v1::Job> visible = VisibleJob(*caller, request->job_id(), false); !visible.ok()) {
    return ToGrpcStatus(visible.status());
  }
  JobStore::ResultsPage page;
  page.from_index = request->from_index();
  page.max_results = 256;
  for (;;) {
    if (context->IsCancelled()) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
    // State and results come from one read: once the job reads as ended, no result is to come.
    absl::StatusOr<v1::Job> job = p_.jobs->Get(request->job_id(), true, page);
    if (!job.ok()) return ToGrpcStatus(job.status());
    const bool ended = job->state() != v1::JOB_STATE_QUEUED && job->state() != v1::JOB_STATE_RUNNING;
    const bool in_order = request->follow() && !ended;  // wait at a request still running
    bool at_gap = false;
    for (const v1::JobResult& r : job->results()) {
      if (in_order && r.index() != page.from_index) {
        at_gap = true;
        break;
      }
      if (!writer->Write(r)) return grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      page.from_index = r.index() + 1;
    }
    if (!at_gap && !job->next_page_token().empty()) continue;  // more have ended: the next page now
    if (!request->follow() || ended) return grpc::Status::OK;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
}

}  // namespace mmx::coordinator
