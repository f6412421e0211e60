#include "coordinator/metrics.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace mmx::coordinator {
namespace {

// Latencies from 1 ms to 2 min.
std::vector<double> LatencyBounds() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
}

std::string Number(double v) { return absl::StrFormat("%.9g", v); }

void Line(std::string* out, const std::string& name, const std::string& labels, double value) {
  absl::StrAppend(out, name, labels.empty() ? "" : absl::StrCat("{", labels, "}"), " ", Number(value), "\n");
}

void Help(std::string* out, const std::string& name, const std::string& type, const std::string& help) {
  absl::StrAppend(out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds) : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

void Histogram::Observe(double value) {
  absl::MutexLock lock(&mu_);
  const size_t bucket = std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin();
  ++counts_[bucket];
  sum_ += value;
  ++count_;
  recent_.push_back(value);
  if (recent_.size() > kRecent) recent_.pop_front();
}

double Histogram::Quantile(double q) const {
  std::vector<double> v;
  {
    absl::MutexLock lock(&mu_);
    v.assign(recent_.begin(), recent_.end());
  }
  if (v.empty()) return 0;
  const size_t k = std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void Histogram::Render(const std::string& name, const std::string& labels, std::string* out) const {
  absl::MutexLock lock(&mu_);
  const std::string sep = labels.empty() ? "" : ",";
  uint64_t cumulative = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    cumulative += counts_[i];
    const std::string le = i < bounds_.size() ? Number(bounds_[i]) : "+Inf";
    Line(out, name + "_bucket", absl::StrCat(labels, sep, "le=\"", le, "\""), static_cast<double>(cumulative));
  }
  Line(out, name + "_sum", labels, sum_);
  Line(out, name + "_count", labels, static_cast<double>(count_));
}

Metrics::Metrics()
    : ttft_(LatencyBounds()), tpot_(LatencyBounds()), step_(LatencyBounds()),
      pause_({0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600}) {}

void Metrics::RequestRejected(const std::string& code) {
  absl::MutexLock lock(&mu_);
  ++rejected_[code];
}

void Metrics::RequestEnded(const std::string& outcome) {
  absl::MutexLock lock(&mu_);
  ++ended_[outcome];
}

void Metrics::ObserveStep(double seconds, int64_t tokens) {
  step_.Observe(seconds);
  step_tokens_.fetch_add(tokens, std::memory_order_relaxed);
}

void Metrics::ObserveWorkerStep(const std::string& worker, double seconds) {
  Histogram* h;
  {
    absl::MutexLock lock(&mu_);
    auto& slot = worker_step_[worker];
    if (!slot) slot = std::make_unique<Histogram>(LatencyBounds());
    h = slot.get();
  }
  h->Observe(seconds);
}

std::string Metrics::RenderPrometheus() const {
  std::string out;
  Help(&out, "mmx_requests_total", "counter", "Requests accepted (Generate calls and job requests).");
  Line(&out, "mmx_requests_total", "", static_cast<double>(requests_.load()));
  {
    absl::MutexLock lock(&mu_);
    Help(&out, "mmx_requests_rejected_total", "counter", "Requests refused before running, by gRPC code.");
    for (const auto& [code, n] : rejected_) Line(&out, "mmx_requests_rejected_total", absl::StrCat("code=\"", code, "\""), n);
    Help(&out, "mmx_requests_ended_total", "counter", "Requests that ended, by finish reason or error.");
    for (const auto& [outcome, n] : ended_) {
      Line(&out, "mmx_requests_ended_total", absl::StrCat("outcome=\"", outcome, "\""), n);
    }
  }
  Help(&out, "mmx_prompt_tokens_total", "counter", "Prompt tokens of accepted requests.");
  Line(&out, "mmx_prompt_tokens_total", "", static_cast<double>(prompt_tokens_.load()));
  Help(&out, "mmx_generated_tokens_total", "counter", "Tokens generated.");
  Line(&out, "mmx_generated_tokens_total", "", static_cast<double>(generated_tokens_.load()));
  Help(&out, "mmx_step_tokens_total", "counter", "Tokens run through the model (prefill and decode).");
  Line(&out, "mmx_step_tokens_total", "", static_cast<double>(step_tokens_.load()));
  Help(&out, "mmx_queue_depth", "gauge", "Requests waiting to be admitted.");
  Line(&out, "mmx_queue_depth", "", queue_depth_.load());
  Help(&out, "mmx_running_sequences", "gauge", "Sequences in the running batch.");
  Line(&out, "mmx_running_sequences", "", running_.load());
  Help(&out, "mmx_steps_in_flight", "gauge", "Steps out now (one per wave at most).");
  Line(&out, "mmx_steps_in_flight", "", steps_in_flight_.load());
  Help(&out, "mmx_steps_in_flight_limit", "gauge", "The most steps kept out at once (--steps-in-flight, or automatic).");
  Line(&out, "mmx_steps_in_flight_limit", "", steps_in_flight_limit_.load());
  Help(&out, "mmx_overlapped_steps_total", "counter", "Steps sent while another step was out.");
  Line(&out, "mmx_overlapped_steps_total", "", static_cast<double>(overlapped_steps_.load()));
  Help(&out, "mmx_time_to_first_token_seconds", "histogram", "From a request's arrival to its first token.");
  ttft_.Render("mmx_time_to_first_token_seconds", "", &out);
  Help(&out, "mmx_time_per_output_token_seconds", "histogram", "Between consecutive tokens of a request.");
  tpot_.Render("mmx_time_per_output_token_seconds", "", &out);
  Help(&out, "mmx_step_seconds", "histogram", "One scheduler step, from sending it to its last tokens.");
  step_.Render("mmx_step_seconds", "", &out);
  Help(&out, "mmx_failovers_total", "counter", "Workers lost while sequences ran on them (their state is replayed).");
  Line(&out, "mmx_failovers_total", "", static_cast<double>(failovers_.load()));
  Help(&out, "mmx_preemptions_total", "counter",
       "Job requests taken out of the running batch for interactive ones (--max-job-share); each is replayed when it runs again.");
  Line(&out, "mmx_preemptions_total", "", static_cast<double>(preemptions_.load()));
  Help(&out, "mmx_paused_requests", "gauge", "Running requests paused for a lost worker's entry.");
  Line(&out, "mmx_paused_requests", "", paused_.load());
  Help(&out, "mmx_replayed_tokens_total", "counter", "Context tokens prefilled again to rebuild state lost with a worker.");
  Line(&out, "mmx_replayed_tokens_total", "", static_cast<double>(replayed_tokens_.load()));
  Help(&out, "mmx_request_pause_seconds", "histogram", "Per request and failover, from losing its state to its next token.");
  pause_.Render("mmx_request_pause_seconds", "", &out);
  Help(&out, "mmx_worker_step_seconds", "histogram",
       "Per step, each worker's compute time (a stage: receipt to forward; an expert host: its experts).");
  absl::MutexLock lock(&mu_);
  for (const auto& [worker, h] : worker_step_) h->Render("mmx_worker_step_seconds", absl::StrCat("worker=\"", worker, "\""), &out);
  return out;
}

v1::ServingStats Metrics::Stats() const {
  v1::ServingStats s;
  s.set_requests_total(requests_.load());
  {
    absl::MutexLock lock(&mu_);
    if (auto it = ended_.find("error"); it != ended_.end()) s.set_requests_failed(it->second);
  }
  s.set_prompt_tokens_total(prompt_tokens_.load());
  s.set_generated_tokens_total(generated_tokens_.load());
  s.set_queue_depth(queue_depth_.load());
  s.set_time_to_first_token_p50_s(ttft_.Quantile(0.5));
  s.set_time_per_output_token_p50_s(tpot_.Quantile(0.5));
  s.set_step_p50_s(step_.Quantile(0.5));
  s.set_paused_requests(paused_.load());
  s.set_failovers_total(failovers_.load());
  s.set_steps_in_flight(steps_in_flight_.load());
  s.set_steps_in_flight_limit(steps_in_flight_limit_.load());
  s.set_overlapped_steps_total(overlapped_steps_.load());
  absl::MutexLock lock(&mu_);
  for (const auto& [worker, h] : worker_step_) (*s.mutable_worker_step_p50_s())[worker] = h->Quantile(0.5);
  return s;
}

}  // namespace mmx::coordinator
