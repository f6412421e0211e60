// JobRunner: runs batch jobs (SubmitJob) through the same scheduler as Generate calls. Jobs
// are stored before SubmitJob returns (job_store.h); a background thread feeds each job's
// requests to the scheduler, at most `max_in_flight` per job (the scheduler's fair queue takes
// turns between jobs and interactive callers), and stores each result as its request ends.
// On start it resumes every QUEUED or RUNNING job from its stored results: after a kill -9 of
// the coordinator, only the requests that were in flight run again.
// A request that fails because the cluster was unavailable (a worker died) is retried once the
// cluster is back, not recorded as failed: a lost machine loses no accepted job.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/wake_flag.h"
#include "coordinator/job_store.h"
#include "coordinator/metrics.h"
#include "coordinator/request_factory.h"
#include "coordinator/scheduler.h"
#include "mmx/v1/inference.pb.h"

namespace mmx::coordinator {

inline constexpr int kMaxJobRequests = 100000;

class JobRunner {
 public:
  // `metrics` may be null.
  JobRunner(JobStore* store, RequestFactory* factory, Scheduler* scheduler, Metrics* metrics, int max_in_flight);
  ~JobRunner();  // in-flight requests are cancelled and left unrecorded (they resume later)

  // Validates every request (INVALID_ARGUMENT names the index), stores the job, starts it.
  absl::StatusOr<v1::Job> Submit(const v1::SubmitJobRequest& request, const std::string& owner = "");
  // Cancels a QUEUED or RUNNING job (its unfinished requests end "cancelled"); returns the job.
  absl::StatusOr<v1::Job> Cancel(const std::string& job_id);

 private:
  struct Active {
    v1::SubmitJobRequest request;
    std::vector<int> pending;                               // indices not started, in order
    std::map<int, std::shared_ptr<Request>> in_flight;      // index -> request
    std::map<int, absl::Time> retry_at;                     // indices waiting to retry
    bool marked_running = false;
  };
  void Loop();
  absl::Status Activate(const std::string& job_id);
  // Starts pending requests, collects ended ones; true when the job has nothing left to run.
  bool Advance(const std::string& job_id, Active& job);
  void Record(const std::string& job_id, int index, const Request* r, const absl::Status& status);
  void CancelActive(const std::string& job_id, Active& job);

  JobStore* const store_;
  RequestFactory* const factory_;
  Scheduler* const scheduler_;
  Metrics* const metrics_;
  const int max_in_flight_;

  absl::Mutex mu_;
  std::vector<std::string> to_activate_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> to_cancel_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> cancels_recorded_ ABSL_GUARDED_BY(mu_);  // for Cancel() to return
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, Active> active_;  // Loop thread only
  bool queue_full_ = false;               // Loop thread only: a submit met a full queue
  // Requests hold it (their end wakes the loop); they may outlive this runner.
  const std::shared_ptr<WakeFlag> waker_ = std::make_shared<WakeFlag>();
  std::thread thread_;
};

}  // namespace mmx::coordinator
