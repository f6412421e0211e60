#include "coordinator/job_store.h"

#include <sqlite3.h>

#include <chrono>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mmx::coordinator {
namespace {

// Prepared statement with RAII finalisation.
class Statement {
 public:
  Statement(sqlite3* db, const char* sql) { rc_ = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr); }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  bool ok() const { return rc_ == SQLITE_OK; }
  sqlite3_stmt* get() { return stmt_; }
  void Bind(int i, const std::string& text) { sqlite3_bind_text(stmt_, i, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT); }
  void BindBlob(int i, const std::string& blob) { sqlite3_bind_blob(stmt_, i, blob.data(), static_cast<int>(blob.size()), SQLITE_TRANSIENT); }
  void Bind(int i, int64_t v) { sqlite3_bind_int64(stmt_, i, v); }
  void BindNull(int i) { sqlite3_bind_null(stmt_, i); }
  int Step() { return sqlite3_step(stmt_); }
  std::string Text(int col) {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string(static_cast<const char*>(p), sqlite3_column_bytes(stmt_, col)) : std::string();
  }
  int64_t Int(int col) { return sqlite3_column_int64(stmt_, col); }

 private:
  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_ERROR;
};

int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr const char* kSchema = R"sql(
CREATE TABLE IF NOT EXISTS jobs (
  job_id TEXT PRIMARY KEY,
  idempotency_key TEXT UNIQUE,
  state INTEGER NOT NULL,
  total INTEGER NOT NULL,
  created_ms INTEGER NOT NULL,
  error TEXT NOT NULL DEFAULT '',
  request BLOB NOT NULL,
  owner TEXT NOT NULL DEFAULT ''
);
CREATE TABLE IF NOT EXISTS results (
  job_id TEXT NOT NULL,
  idx INTEGER NOT NULL,
  result BLOB NOT NULL,
  PRIMARY KEY (job_id, idx)
);
)sql";

}  // namespace

std::string NewJobId() {
  static std::mt19937_64 rng(std::random_device{}() ^ static_cast<uint64_t>(NowMs()));
  static absl::Mutex mu;
  absl::MutexLock lock(&mu);
  return absl::StrFormat("job-%016x", rng());
}

absl::StatusOr<std::unique_ptr<JobStore>> JobStore::Open(const std::string& state_dir) {
  const std::string path = state_dir + "/jobs.db";
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX,
                      nullptr) != SQLITE_OK) {
    std::string message = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open the job database ", path, ": ", message, " (does --state-dir exist and is it writable?)"));
  }
  sqlite3_busy_timeout(db, 5000);
  std::unique_ptr<JobStore> store(new JobStore(db, path));
  absl::MutexLock lock(&store->mu_);
  // WAL: a committed transaction survives the process being killed; NORMAL sync is enough for
  // that (FULL would also cover power loss, at an fsync per result).
  if (absl::Status st = store->Exec("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"); !st.ok()) return st;
  if (absl::Status st = store->Exec(kSchema); !st.ok()) return st;
  // A database from before API keys: its jobs are the anonymous owner's.
  if (!store->Exec("SELECT owner FROM jobs LIMIT 0").ok()) {
    if (absl::Status st = store->Exec("ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''"); !st.ok()) return st;
  }
  return store;
}

JobStore::~JobStore() {
  absl::MutexLock lock(&mu_);
  sqlite3_close(db_);
}

absl::Status JobStore::Error(const std::string& what) const {
  return absl::InternalError(absl::StrCat("job database ", path_, ": ", what, ": ", sqlite3_errmsg(db_)));
}

absl::Status JobStore::Exec(const std::string& sql) const {
  char* message = nullptr;
  if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string m = message ? message : "unknown error";
    sqlite3_free(message);
    return absl::InternalError(absl::StrCat("job database ", path_, ": ", m));
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::Job> JobStore::Create(const v1::SubmitJobRequest& request, bool* created,
                                         const std::string& owner) {
  absl::MutexLock lock(&mu_);
  *created = false;
  // Stored scoped to the owner (the anonymous owner's as given, as before keys existed).
  const std::string idempotency_key =
      owner.empty() ? request.idempotency_key() : absl::StrCat(owner, "\x1f", request.idempotency_key());
  if (!request.idempotency_key().empty()) {
    Statement find(db_, "SELECT job_id FROM jobs WHERE idempotency_key = ?");
    if (!find.ok()) return Error("prepare");
    find.Bind(1, idempotency_key);
    if (find.Step() == SQLITE_ROW) return GetLocked(find.Text(0), /*with_results=*/true, ResultsPage{});
  }
  const std::string id = NewJobId();
  Statement insert(db_, "INSERT INTO jobs (job_id, idempotency_key, state, total, created_ms, request, owner) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)");
  if (!insert.ok()) return Error("prepare");
  insert.Bind(1, id);
  if (request.idempotency_key().empty()) {
    insert.BindNull(2);
  } else {
    insert.Bind(2, idempotency_key);
  }
  insert.Bind(3, static_cast<int64_t>(v1::JOB_STATE_QUEUED));
  insert.Bind(4, static_cast<int64_t>(request.requests_size()));
  insert.Bind(5, NowMs());
  insert.BindBlob(6, request.SerializeAsString());
  insert.Bind(7, owner);
  if (insert.Step() != SQLITE_DONE) return Error("insert job");
  *created = true;
  return GetLocked(id, /*with_results=*/false, ResultsPage{});
}

absl::StatusOr<v1::Job> JobStore::Get(const std::string& job_id, bool with_results, const ResultsPage& page) const {
  absl::MutexLock lock(&mu_);
  return GetLocked(job_id, with_results, page);
}

absl::StatusOr<v1::Job> JobStore::GetLocked(const std::string& job_id, bool with_results,
                                            const ResultsPage& page) const {
  Statement q(db_, "SELECT state, total, created_ms, error, owner FROM jobs WHERE job_id = ?");
  if (!q.ok()) return Error("prepare");
  q.Bind(1, job_id);
  if (q.Step() != SQLITE_ROW) {
    return absl::NotFoundError(absl::StrCat("no job '", job_id, "' (ListJobs shows the jobs this server has)"));
  }
  v1::Job job;
  job.set_job_id(job_id);
  job.set_state(static_cast<v1::JobState>(q.Int(0)));
  job.set_total(static_cast<int32_t>(q.Int(1)));
  job.set_created_unix_ms(q.Int(2));
  job.set_error(q.Text(3));
  job.set_owner(q.Text(4));
  Statement count(db_, "SELECT COUNT(*) FROM results WHERE job_id = ?");
  if (!count.ok()) return Error("prepare");
  count.Bind(1, job_id);
  if (count.Step() == SQLITE_ROW) job.set_completed(static_cast<int32_t>(count.Int(0)));
  if (!with_results) return job;
  // Rows in index order from the page's start (the primary key's order: no sort).
  Statement r(db_, "SELECT idx, result FROM results WHERE job_id = ? AND idx >= ? ORDER BY idx");
  if (!r.ok()) return Error("prepare");
  r.Bind(1, job_id);
  r.Bind(2, int64_t{page.from_index});
  size_t bytes = 0;
  while (r.Step() == SQLITE_ROW) {
    const std::string result = r.Text(1);
    if (job.results_size() > 0 && (job.results_size() >= page.max_results || bytes + result.size() > page.max_bytes)) {
      job.set_next_page_token(std::to_string(r.Int(0)));
      break;
    }
    if (!job.add_results()->ParseFromString(result)) return absl::DataLossError("job database: a stored result does not parse");
    bytes += result.size();
  }
  return job;
}

absl::StatusOr<v1::SubmitJobRequest> JobStore::GetRequest(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT request FROM jobs WHERE job_id = ?");
  if (!q.ok()) return Error("prepare");
  q.Bind(1, job_id);
  if (q.Step() != SQLITE_ROW) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  v1::SubmitJobRequest request;
  if (!request.ParseFromString(q.Text(0))) return absl::DataLossError("job database: a stored request does not parse");
  return request;
}

absl::StatusOr<std::vector<v1::Job>> JobStore::List(int limit, const std::string* owner) const {
  std::vector<std::string> ids;
  {
    absl::MutexLock lock(&mu_);
    Statement q(db_, owner == nullptr
                         ? "SELECT job_id FROM jobs ORDER BY created_ms DESC, rowid DESC LIMIT ?2"
                         : "SELECT job_id FROM jobs WHERE owner = ?1 ORDER BY created_ms DESC, rowid DESC LIMIT ?2");
    if (!q.ok()) return Error("prepare");
    if (owner != nullptr) q.Bind(1, *owner);
    q.Bind(2, static_cast<int64_t>(limit > 0 ? limit : 100));
    while (q.Step() == SQLITE_ROW) ids.push_back(q.Text(0));
  }
  std::vector<v1::Job> jobs;
  for (const std::string& id : ids) {
    absl::StatusOr<v1::Job> job = Get(id, /*with_results=*/false);
    if (!job.ok()) return job.status();
    jobs.push_back(*std::move(job));
  }
  return jobs;
}

absl::StatusOr<std::vector<std::string>> JobStore::Unfinished() const {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT job_id FROM jobs WHERE state IN (?, ?) ORDER BY created_ms, rowid");
  if (!q.ok()) return Error("prepare");
  q.Bind(1, static_cast<int64_t>(v1::JOB_STATE_QUEUED));
  q.Bind(2, static_cast<int64_t>(v1::JOB_STATE_RUNNING));
  std::vector<std::string> ids;
  while (q.Step() == SQLITE_ROW) ids.push_back(q.Text(0));
  return ids;
}

absl::StatusOr<std::vector<int>> JobStore::EndedIndices(const std::string& job_id) const {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "SELECT idx FROM results WHERE job_id = ? ORDER BY idx");
  if (!q.ok()) return Error("prepare");
  q.Bind(1, job_id);
  std::vector<int> ended;
  while (q.Step() == SQLITE_ROW) ended.push_back(static_cast<int>(q.Int(0)));
  return ended;
}

absl::Status JobStore::SetState(const std::string& job_id, v1::JobState state, const std::string& error) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "UPDATE jobs SET state = ?, error = ? WHERE job_id = ?");
  if (!q.ok()) return Error("prepare");
  q.Bind(1, static_cast<int64_t>(state));
  q.Bind(2, error);
  q.Bind(3, job_id);
  if (q.Step() != SQLITE_DONE) return Error("update job state");
  if (sqlite3_changes(db_) == 0) return absl::NotFoundError(absl::StrCat("no job '", job_id, "'"));
  return absl::OkStatus();
}

absl::Status JobStore::PutResult(const std::string& job_id, const v1::JobResult& result) {
  absl::MutexLock lock(&mu_);
  Statement q(db_, "INSERT OR REPLACE INTO results (job_id, idx, result) VALUES (?, ?, ?)");
  if (!q.ok()) return Error("prepare");
  q.Bind(1, job_id);
  q.Bind(2, static_cast<int64_t>(result.index()));
  q.BindBlob(3, result.SerializeAsString());
  if (q.Step() != SQLITE_DONE) return Error("store result");
  return absl::OkStatus();
}

absl::StatusOr<JobStore::ResultsPage> ResultsPageOf(const v1::GetJobRequest& request) {
  constexpr int kMaxPageSize = 10000;
  JobStore::ResultsPage page;
  if (request.page_size() < 0 || request.page_size() > kMaxPageSize) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size ", request.page_size(), " is out of range: give 1-", kMaxPageSize, " (0 = 1000)"));
  }
  if (request.page_size() > 0) page.max_results = request.page_size();
  if (!request.page_token().empty()) {
    int from = 0;
    if (!absl::SimpleAtoi(request.page_token(), &from) || from < 0) {
      return absl::InvalidArgumentError(absl::StrCat("page_token '", request.page_token(),
                                                     "' is not one this server gave: pass Job.next_page_token as is"));
    }
    page.from_index = from;
  }
  return page;
}

}  // namespace mmx::coordinator
