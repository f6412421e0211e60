#include "coordinator/job_runner.h"

#include <algorithm>
#include <cstdio>

#include "absl/strings/str_cat.h"

namespace mmx::coordinator {
namespace {

// How long a request that met an unavailable cluster waits before it is tried again.
constexpr absl::Duration kRetryDelay = absl::Seconds(1);
// How long before requests the scheduler's full queue refused are offered again.
constexpr absl::Duration kQueueFullRetry = absl::Milliseconds(50);

}  // namespace

JobRunner::JobRunner(JobStore* store, RequestFactory* factory, Scheduler* scheduler, Metrics* metrics,
                     int max_in_flight)
    : store_(store), factory_(factory), scheduler_(scheduler), metrics_(metrics),
      max_in_flight_(std::max(1, max_in_flight)) {
  absl::StatusOr<std::vector<std::string>> unfinished = store_->Unfinished();
  if (!unfinished.ok()) {
    std::fprintf(stderr, "mmx-coord: cannot list unfinished jobs: %s\n", std::string(unfinished.status().message()).c_str());
  } else {
    if (!unfinished->empty()) std::fprintf(stderr, "mmx-coord: resuming %zu unfinished job(s)\n", unfinished->size());
    absl::MutexLock lock(&mu_);
    to_activate_ = *unfinished;
  }
  thread_ = std::thread([this] { Loop(); });
}

JobRunner::~JobRunner() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  waker_->Wake();
  thread_.join();
}

absl::StatusOr<v1::Job> JobRunner::Submit(const v1::SubmitJobRequest& request, const std::string& owner) {
  if (request.requests_size() == 0) return absl::InvalidArgumentError("the job has no requests");
  if (request.requests_size() > kMaxJobRequests) {
    return absl::InvalidArgumentError(absl::StrCat("the job has ", request.requests_size(),
                                                   " requests; at most ", kMaxJobRequests, " per job"));
  }
  for (int i = 0; i < request.requests_size(); ++i) {
    absl::StatusOr<Request::Params> p = factory_->Validate(request.requests(i));
    if (!p.ok()) return absl::Status(p.status().code(), absl::StrCat("requests[", i, "]: ", p.status().message()));
  }
  bool created = false;
  absl::StatusOr<v1::Job> job = store_->Create(request, &created, owner);
  if (!job.ok()) return job.status();
  if (created) {
    absl::MutexLock lock(&mu_);
    to_activate_.push_back(job->job_id());
  }
  waker_->Wake();
  return job;
}

absl::StatusOr<v1::Job> JobRunner::Cancel(const std::string& job_id) {
  absl::StatusOr<v1::Job> job = store_->Get(job_id, /*with_results=*/false);
  if (!job.ok()) return job.status();
  if (job->state() != v1::JOB_STATE_QUEUED && job->state() != v1::JOB_STATE_RUNNING) return job;
  {
    absl::MutexLock lock(&mu_);
    to_cancel_.insert(job_id);
  }
  waker_->Wake();
  // The loop records the cancellation in its next turn; wait for that, so the reply shows it.
  {
    absl::MutexLock lock(&mu_);
    auto recorded = [this, &job_id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return stop_ || cancels_recorded_.count(job_id) > 0;
    };
    mu_.AwaitWithTimeout(absl::Condition(&recorded), absl::Seconds(10));
    cancels_recorded_.erase(job_id);
  }
  return store_->Get(job_id, /*with_results=*/false);
}

absl::Status JobRunner::Activate(const std::string& job_id) {
  absl::StatusOr<v1::SubmitJobRequest> request = store_->GetRequest(job_id);
  if (!request.ok()) return request.status();
  absl::StatusOr<std::vector<int>> ended = store_->EndedIndices(job_id);
  if (!ended.ok()) return ended.status();
  Active job;
  job.request = *std::move(request);
  const std::set<int> done(ended->begin(), ended->end());
  for (int i = 0; i < job.request.requests_size(); ++i) {
    if (!done.count(i)) job.pending.push_back(i);
  }
  active_[job_id] = std::move(job);
  return absl::OkStatus();
}

void JobRunner::Record(const std::string& job_id, int index, const Request* r, const absl::Status& status) {
  v1::JobResult result;
  result.set_index(index);
  if (r) {
    result.mutable_token_ids()->Add(r->output.begin(), r->output.end());
    result.set_text(r->text());
    result.mutable_usage()->set_prompt_tokens(static_cast<int32_t>(r->params().prompt.size()));
    result.mutable_usage()->set_completion_tokens(static_cast<int32_t>(r->output.size()));
  }
  if (absl::IsCancelled(status)) {
    result.set_finish_reason("cancelled");
  } else if (!status.ok()) {
    result.set_error(std::string(status.message()));
  } else if (r) {
    result.set_finish_reason(r->finish_reason());
  }
  if (absl::Status st = store_->PutResult(job_id, result); !st.ok()) {
    std::fprintf(stderr, "mmx-coord: job %s: %s\n", job_id.c_str(), std::string(st.message()).c_str());
  }
}

void JobRunner::CancelActive(const std::string& job_id, Active& job) {
  for (auto& [index, r] : job.in_flight) {
    r->Cancel();
    Record(job_id, index, r.get(), absl::CancelledError("cancelled"));
  }
  job.in_flight.clear();
  for (int index : job.pending) Record(job_id, index, nullptr, absl::CancelledError("cancelled"));
  for (const auto& [index, when] : job.retry_at) Record(job_id, index, nullptr, absl::CancelledError("cancelled"));
  job.pending.clear();
  job.retry_at.clear();
  (void)store_->SetState(job_id, v1::JOB_STATE_CANCELLED);
}

bool JobRunner::Advance(const std::string& job_id, Active& job) {
  // Collect ended requests.
  for (auto it = job.in_flight.begin(); it != job.in_flight.end();) {
    Request& r = *it->second;
    if (!r.done()) {
      ++it;
      continue;
    }
    const absl::Status status = r.final_status();
    if (absl::IsUnavailable(status)) {
      job.retry_at[it->first] = absl::Now() + kRetryDelay;  // the cluster will be back: run it again
    } else {
      Record(job_id, it->first, &r, status);
    }
    it = job.in_flight.erase(it);
  }
  // Retries whose time came go back to the front.
  const absl::Time now = absl::Now();
  for (auto it = job.retry_at.begin(); it != job.retry_at.end();) {
    if (it->second <= now) {
      job.pending.insert(job.pending.begin(), it->first);
      it = job.retry_at.erase(it);
    } else {
      ++it;
    }
  }
  std::sort(job.pending.begin(), job.pending.end());
  // Start more, up to the per-job limit.
  while (!job.pending.empty() && static_cast<int>(job.in_flight.size()) < max_in_flight_) {
    const int index = job.pending.front();
    absl::StatusOr<std::shared_ptr<Request>> r = factory_->Make(job.request.requests(index), job_id);
    if (!r.ok()) {  // valid at submit, but the server's limits or tokenizer changed since
      job.pending.erase(job.pending.begin());
      Record(job_id, index, nullptr, r.status());
      continue;
    }
    absl::Status st = scheduler_->Submit(*r);
    if (absl::IsResourceExhausted(st)) {  // the scheduler's queue is full: try again shortly
      queue_full_ = true;
      break;
    }
    job.pending.erase(job.pending.begin());
    if (!st.ok()) {
      Record(job_id, index, nullptr, st);
      continue;
    }
    if (metrics_) {
      metrics_->RequestAccepted();
      metrics_->PromptTokens(static_cast<int64_t>((*r)->params().prompt.size()));
    }
    // Its end wakes the loop to record it.
    (*r)->SetUpdateListener([waker = waker_, request = std::weak_ptr<Request>(*r)] {
      if (auto alive = request.lock(); alive && alive->done()) waker->Wake();
    });
    job.in_flight[index] = *std::move(r);
  }
  return job.pending.empty() && job.in_flight.empty() && job.retry_at.empty();
}

void JobRunner::Loop() {
  while (true) {
    std::vector<std::string> activate;
    std::set<std::string> cancel;
    {
      absl::MutexLock lock(&mu_);
      if (stop_) break;
      activate.swap(to_activate_);
      cancel.swap(to_cancel_);
    }
    for (const std::string& id : activate) {
      if (active_.count(id)) continue;
      if (absl::Status st = Activate(id); !st.ok()) {
        (void)store_->SetState(id, v1::JOB_STATE_FAILED, std::string(st.message()));
      }
    }
    queue_full_ = false;
    for (auto it = active_.begin(); it != active_.end();) {
      const std::string& id = it->first;
      if (cancel.count(id)) {
        CancelActive(id, it->second);
        it = active_.erase(it);
        continue;
      }
      const bool finished = Advance(id, it->second);
      if (!it->second.marked_running && !it->second.in_flight.empty()) {
        (void)store_->SetState(id, v1::JOB_STATE_RUNNING);
        it->second.marked_running = true;
      }
      if (finished) {
        (void)store_->SetState(id, v1::JOB_STATE_SUCCEEDED);
        it = active_.erase(it);
      } else {
        ++it;
      }
    }
    // Cancels for jobs that are not active (e.g. still being activated).
    for (const std::string& id : cancel) {
      if (!active_.count(id)) {
        absl::StatusOr<v1::Job> job = store_->Get(id, false);
        if (job.ok() && (job->state() == v1::JOB_STATE_QUEUED || job->state() == v1::JOB_STATE_RUNNING)) {
          if (Activate(id).ok()) CancelActive(id, active_[id]);
          active_.erase(id);
        }
      }
    }
    {
      absl::MutexLock lock(&mu_);
      cancels_recorded_.insert(cancel.begin(), cancel.end());
    }
    // Sleep until a submit, a cancel or a request's end wakes the loop, or the first retry is due.
    absl::Time wake_by = queue_full_ ? absl::Now() + kQueueFullRetry : absl::InfiniteFuture();
    for (const auto& [id, job] : active_) {
      for (const auto& [index, when] : job.retry_at) wake_by = std::min(wake_by, when);
    }
    waker_->WaitUntil(wake_by);
  }
  // Shutting down: in-flight requests are cancelled and not recorded; they run again on restart.
  for (auto& [id, job] : active_) {
    for (auto& [index, r] : job.in_flight) r->Cancel();
  }
}

}  // namespace mmx::coordinator
