// Metrics: what the coordinator counts about serving, rendered as Prometheus text (served over
// HTTP by metrics_http.h) and summarised in ClusterStatus.stats for `mmx status`.
// Counters and gauges are atomics; each histogram keeps Prometheus buckets plus the last 2048
// observations for quantiles, so memory stays bounded however long the server runs.
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "mmx/v1/inference.pb.h"

namespace mmx::coordinator {

class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  // The q-quantile of the recent observations (0 when there are none).
  double Quantile(double q) const;
  // Appends `name`_bucket/_sum/_count lines, with `labels` (e.g. `worker="a"`) on each.
  void Render(const std::string& name, const std::string& labels, std::string* out) const;

 private:
  static constexpr size_t kRecent = 2048;
  const std::vector<double> bounds_;
  mutable absl::Mutex mu_;
  std::vector<uint64_t> counts_ ABSL_GUARDED_BY(mu_);  // per bucket, not cumulative; last = +Inf
  double sum_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t count_ ABSL_GUARDED_BY(mu_) = 0;
  std::deque<double> recent_ ABSL_GUARDED_BY(mu_);
};

class Metrics {
 public:
  Metrics();

  void RequestAccepted() { requests_.fetch_add(1, std::memory_order_relaxed); }
  void RequestRejected(const std::string& code);  // refused at validation or admission
  void RequestEnded(const std::string& outcome);  // "stop" | "length" | "cancelled" | "error"
  void PromptTokens(int64_t n) { prompt_tokens_.fetch_add(n, std::memory_order_relaxed); }
  void GeneratedTokens(int64_t n) { generated_tokens_.fetch_add(n, std::memory_order_relaxed); }
  void SetQueueDepth(int n) { queue_depth_.store(n, std::memory_order_relaxed); }
  void SetRunning(int n) { running_.store(n, std::memory_order_relaxed); }
  void ObserveTimeToFirstToken(double seconds) { ttft_.Observe(seconds); }
  void ObserveTimePerOutputToken(double seconds) { tpot_.Observe(seconds); }
  void ObserveStep(double seconds, int64_t tokens);
  void ObserveWorkerStep(const std::string& worker, double seconds);
  // Failover: a lost worker voided the running sequences' state.
  void Failover() { failovers_.fetch_add(1, std::memory_order_relaxed); }
  // A job request taken out of the running batch for an interactive one (it is replayed later).
  void Preempted() { preemptions_.fetch_add(1, std::memory_order_relaxed); }
  void SetPaused(int n) { paused_.store(n, std::memory_order_relaxed); }
  // A step sent while another was out (several steps in flight overlapping).
  void OverlappedStep() { overlapped_steps_.fetch_add(1, std::memory_order_relaxed); }
  // Steps out now, and the most the scheduler keeps out (--steps-in-flight, or automatic).
  void SetStepsInFlight(int n, int limit) {
    steps_in_flight_.store(n, std::memory_order_relaxed);
    steps_in_flight_limit_.store(limit, std::memory_order_relaxed);
  }
  void ReplayedTokens(int64_t n) { replayed_tokens_.fetch_add(n, std::memory_order_relaxed); }
  // From a request's state being lost to its next token.
  void ObservePause(double seconds) { pause_.Observe(seconds); }

  std::string RenderPrometheus() const;
  v1::ServingStats Stats() const;

 private:
  std::atomic<int64_t> requests_{0}, prompt_tokens_{0}, generated_tokens_{0}, step_tokens_{0};
  std::atomic<int64_t> failovers_{0}, replayed_tokens_{0}, preemptions_{0}, overlapped_steps_{0};
  std::atomic<int> queue_depth_{0}, running_{0}, paused_{0}, steps_in_flight_{0}, steps_in_flight_limit_{0};
  mutable absl::Mutex mu_;
  std::map<std::string, int64_t> rejected_ ABSL_GUARDED_BY(mu_);  // by gRPC code name
  std::map<std::string, int64_t> ended_ ABSL_GUARDED_BY(mu_);     // by outcome
  Histogram ttft_, tpot_, step_, pause_;
  std::map<std::string, std::unique_ptr<Histogram>> worker_step_ ABSL_GUARDED_BY(mu_);
};

}  // namespace mmx::coordinator
