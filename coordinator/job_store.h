// JobStore: batch jobs on disk, in SQLite (`mmx-coord serve --state-dir DIR`, file jobs.db).
// A job is its SubmitJobRequest, its state and one stored JobResult per ended request. Each
// change is one transaction in WAL mode: once a call returns, a kill -9 of the coordinator loses
// nothing it recorded, so a restarted coordinator resumes unfinished jobs where they stood and
// serves finished results as before.
//
// Thread-safe (one connection, guarded by a mutex: jobs change at request granularity, far
// below what serialising them costs).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "mmx/v1/inference.pb.h"

struct sqlite3;

namespace mmx::coordinator {

class JobStore {
 public:
  // Opens (creating if needed) DIR/jobs.db. Errors name the file and what SQLite said.
  static absl::StatusOr<std::unique_ptr<JobStore>> Open(const std::string& state_dir);
  ~JobStore();

  // Stores a new QUEUED job of `owner` (an API key's name; "" without keys). With an
  // idempotency key that an earlier submit of the same owner used, returns that job instead
  // (AlreadyExists is not an error for a retry); `*created` says which happened. Keys of
  // different owners never meet.
  absl::StatusOr<v1::Job> Create(const v1::SubmitJobRequest& request, bool* created, const std::string& owner = "");
  // Which results Get returns: those from index `from_index` on, in index order, at most
  // `max_results` and no more than about `max_bytes` of them serialized (at least one, if any).
  // Job.next_page_token is set when results are left after them.
  struct ResultsPage {
    int from_index = 0;
    int max_results = 1000;
    size_t max_bytes = size_t{3} << 20;
  };
  // NotFound for an unknown id. Job.completed always counts every ended request.
  absl::StatusOr<v1::Job> Get(const std::string& job_id, bool with_results) const {
    return Get(job_id, with_results, ResultsPage{});
  }
  absl::StatusOr<v1::Job> Get(const std::string& job_id, bool with_results, const ResultsPage& page) const;
  absl::StatusOr<v1::SubmitJobRequest> GetRequest(const std::string& job_id) const;
  // Newest first, without results; only `*owner`'s when it is given.
  absl::StatusOr<std::vector<v1::Job>> List(int limit, const std::string* owner = nullptr) const;
  // Jobs that are QUEUED or RUNNING, oldest first (the ones to resume).
  absl::StatusOr<std::vector<std::string>> Unfinished() const;
  // Indices of the requests of a job that already have a result.
  absl::StatusOr<std::vector<int>> EndedIndices(const std::string& job_id) const;

  absl::Status SetState(const std::string& job_id, v1::JobState state, const std::string& error = "");
  // Records one request's result (replacing any earlier one for that index).
  absl::Status PutResult(const std::string& job_id, const v1::JobResult& result);

 private:
  explicit JobStore(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  absl::Status Exec(const std::string& sql) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::Job> GetLocked(const std::string& job_id, bool with_results, const ResultsPage& page) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Error(const std::string& what) const;

  mutable absl::Mutex mu_;
  sqlite3* db_ ABSL_GUARDED_BY(mu_);
  const std::string path_;
};

// "job-" and 16 random hex digits.
std::string NewJobId();

// The page a GetJobRequest asks for (page_size 0 = 1000, at most 10000; page_token a
// Job.next_page_token). InvalidArgument, saying what to send, for anything else.
absl::StatusOr<JobStore::ResultsPage> ResultsPageOf(const v1::GetJobRequest& request);

}  // namespace mmx::coordinator
