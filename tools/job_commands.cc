#include "tools/job_commands.h"

#include <chrono>
#include <cstdio>
#include <fstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "base/status_macros.h"
#include "proto/grpc_status.h"
#include "tools/job_results_download.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/inference.grpc.pb.h"

namespace mmx::tools {
namespace {


void WithDeadline(grpc::ClientContext* c, int seconds = 30) {
  c->set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(seconds));
}

const char* StateName(v1::JobState s) {
  switch (s) {
    case v1::JOB_STATE_QUEUED: return "queued";
    case v1::JOB_STATE_RUNNING: return "running";
    case v1::JOB_STATE_SUCCEEDED: return "succeeded";
    case v1::JOB_STATE_FAILED: return "failed";
    case v1::JOB_STATE_CANCELLED: return "cancelled";
    default: return "unknown";
  }
}

std::string ToJson(const google::protobuf::Message& m) {
  std::string out;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(m, &out, options);
  return out;
}

void PrintJob(const v1::Job& job, bool json) {
  if (json) {
    std::printf("%s\n", ToJson(job).c_str());
    return;
  }
  std::printf("%s  %s  %d/%d done%s\n", job.job_id().c_str(), StateName(job.state()), job.completed(), job.total(),
              job.error().empty() ? "" : ("  (" + job.error() + ")").c_str());
  for (const v1::JobResult& r : job.results()) {
    if (!r.error().empty()) {
      std::printf("  [%d] error: %s\n", r.index(), r.error().c_str());
    } else if (!r.text().empty() || r.token_ids_size() == 0) {
      std::printf("  [%d] %s: %s\n", r.index(), r.finish_reason().c_str(), r.text().c_str());
    } else {
      std::printf("  [%d] %s: ids %s\n", r.index(), r.finish_reason().c_str(), absl::StrJoin(r.token_ids(), ",").c_str());
    }
  }
}

// The job with every ended request's result: GetJob a page at a time (each reply stays under
// gRPC's message limit however large the job).
absl::StatusOr<v1::Job> GetWholeJob(v1::Inference::Stub& stub, const ServerConnection& connection,
                                    const std::string& job_id) {
  v1::Job whole;
  v1::GetJobRequest get;
  get.set_job_id(job_id);
  do {
    grpc::ClientContext context;
    Authorize(&context, connection);
    WithDeadline(&context);
    v1::Job page;
    if (absl::Status st = FromGrpcStatus(stub.GetJob(&context, get, &page), connection.server); !st.ok()) return st;
    if (get.page_token().empty()) {  // state and counts as of the first page
      whole = page;
      whole.clear_results();
    }
    for (v1::JobResult& r : *page.mutable_results()) *whole.add_results() = std::move(r);
    get.set_page_token(page.next_page_token());
  } while (!get.page_token().empty());
  whole.clear_next_page_token();
  return whole;
}

}  // namespace

JobCommands::JobCommands(CLI::App& app) {
  submit_ = app.add_subcommand("submit", "Submit a batch job: one GenerateRequest (JSON) per line of FILE");
  submit_->add_option("file", file_, "JSON Lines file")->required();
  submit_->add_option("--idempotency-key", idempotency_key_, "A retried submit with the same key returns the same job");
  submit_->add_flag("--wait", wait_, "Wait for the job to end and print its results");
  job_ = app.add_subcommand("job", "Show a batch job and its results");
  job_->add_option("id", job_id_, "Job id")->required();
  job_->add_option("--results", results_file_,
                   "Write every result to FILE as JSON lines, following the job until it ends; run again to "
                   "resume a broken download");
  jobs_ = app.add_subcommand("jobs", "List the newest batch jobs");
  jobs_->add_option("--limit", limit_, "How many");
  cancel_ = app.add_subcommand("cancel", "Cancel a queued or running batch job");
  cancel_->add_option("id", job_id_, "Job id")->required();
  for (CLI::App* c : {submit_, job_, jobs_, cancel_}) {
    AddConnectionOptions(c, &connection_);
    c->add_flag("--json", json_, "Print JSON");
  }
}

bool JobCommands::parsed() const { return submit_->parsed() || job_->parsed() || jobs_->parsed() || cancel_->parsed(); }

absl::Status JobCommands::Run() const {
  if (submit_->parsed()) return Submit();
  if (job_->parsed()) return Show();
  if (jobs_->parsed()) return List();
  return Cancel();
}

absl::Status JobCommands::Submit() const {
  std::ifstream in(file_);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", file_));
  v1::SubmitJobRequest request;
  request.set_idempotency_key(idempotency_key_);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    google::protobuf::util::JsonParseOptions options;
    const auto st = google::protobuf::util::JsonStringToMessage(line, request.add_requests(), options);
    if (!st.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(file_, ":", n, ": not a GenerateRequest in JSON: ",
                                                     std::string(st.message())));
    }
  }
  if (request.requests_size() == 0) return absl::InvalidArgumentError(absl::StrCat(file_, " has no requests"));
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<v1::Inference::Stub> stub, ConnectInference(connection_));
  v1::Job job;
  {
    grpc::ClientContext context;
    Authorize(&context, connection_);
    WithDeadline(&context);
    if (absl::Status st = FromGrpcStatus(stub->SubmitJob(&context, request, &job), connection_.server); !st.ok()) return st;
  }
  if (!wait_) {
    if (json_) {
      std::printf("%s\n", ToJson(job).c_str());
    } else {
      std::printf("%s\n", job.job_id().c_str());
    }
    return absl::OkStatus();
  }
  int last_completed = -1;
  while (job.state() == v1::JOB_STATE_QUEUED || job.state() == v1::JOB_STATE_RUNNING) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    grpc::ClientContext context;
    Authorize(&context, connection_);
    WithDeadline(&context);
    v1::GetJobRequest get;
    get.set_job_id(job.job_id());
    get.set_omit_results(true);
    if (absl::Status st = FromGrpcStatus(stub->GetJob(&context, get, &job), connection_.server); !st.ok()) return st;
    if (job.completed() != last_completed && !json_) {
      std::fprintf(stderr, "\r%s: %d/%d", job.job_id().c_str(), job.completed(), job.total());
      last_completed = job.completed();
    }
  }
  if (!json_) std::fprintf(stderr, "\n");
  MMX_ASSIGN_OR_RETURN(const v1::Job whole, GetWholeJob(*stub, connection_, job.job_id()));
  PrintJob(whole, json_);
  return absl::OkStatus();
}

absl::Status JobCommands::Show() const {
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<v1::Inference::Stub> stub, ConnectInference(connection_));
  if (!results_file_.empty()) return DownloadJobResults(*stub, connection_, job_id_, results_file_, json_);
  MMX_ASSIGN_OR_RETURN(const v1::Job job, GetWholeJob(*stub, connection_, job_id_));
  PrintJob(job, json_);
  return absl::OkStatus();
}

absl::Status JobCommands::List() const {
  grpc::ClientContext context;
  Authorize(&context, connection_);
  WithDeadline(&context);
  v1::ListJobsRequest list;
  list.set_limit(limit_);
  v1::ListJobsResponse response;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<v1::Inference::Stub> stub, ConnectInference(connection_));
  if (absl::Status st = FromGrpcStatus(stub->ListJobs(&context, list, &response), connection_.server); !st.ok()) return st;
  if (json_) {
    std::printf("%s\n", ToJson(response).c_str());
    return absl::OkStatus();
  }
  for (const v1::Job& j : response.jobs()) PrintJob(j, false);
  return absl::OkStatus();
}

absl::Status JobCommands::Cancel() const {
  grpc::ClientContext context;
  Authorize(&context, connection_);
  WithDeadline(&context);
  v1::CancelJobRequest cancel;
  cancel.set_job_id(job_id_);
  v1::Job job;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<v1::Inference::Stub> stub, ConnectInference(connection_));
  if (absl::Status st = FromGrpcStatus(stub->CancelJob(&context, cancel, &job), connection_.server); !st.ok()) return st;
  PrintJob(job, json_);
  return absl::OkStatus();
}

}  // namespace mmx::tools
