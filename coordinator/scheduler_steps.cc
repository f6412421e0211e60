// The scheduler's steps: waves, planning and sending each wave's next step, and taking the
// replies back (scheduler.h says how the loop uses them).
#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"
#include "coordinator/scheduler.h"
#include "coordinator/step_results.h"
#include "coordinator/waves.h"

namespace mmx::coordinator {
namespace {

SequenceProgress ProgressOf(const Request& r) {
  return {static_cast<int64_t>(r.params().prompt.size()), static_cast<int64_t>(r.output.size()), r.processed,
          r.params().interactive()};
}

// One sequence's part of the step, from its request and the plan.
SequenceStep ToSequenceStep(const Request& r, const PlannedSequence& p) {
  SequenceStep s;
  s.sequence_id = r.id();
  s.start_position = p.start_position;
  // Context tokens: a prompt chunk, a replay chunk (prompt and generated tokens), or the last
  // sampled token.
  for (int64_t i = p.start_position; i < p.start_position + p.num_tokens; ++i) s.tokens.push_back(r.context_token(i));
  s.sample = p.sample;
  s.return_logits = r.params().return_logits;
  s.sampling = r.params().sampling;
  s.logprobs = r.params().logprobs;
  if (r.params().prompt_logprobs >= 0) {
    // Rows inside the prompt are scored against the prompt token after them; the prompt's last
    // row predicts the first generated token, which is sampled, not scored.
    const int64_t prompt = static_cast<int64_t>(r.params().prompt.size());
    for (int64_t i = p.start_position; i < p.start_position + p.num_tokens && i + 1 < prompt; ++i) {
      s.next_token_ids.push_back(r.params().prompt[i + 1]);
    }
    s.prompt_logprobs = r.params().prompt_logprobs;
  }
  return s;
}

}  // namespace

void Scheduler::CountWaves() {
  const int wanted = options_.steps_in_flight > 0 ? options_.steps_in_flight : cluster_->AutomaticStepsInFlight();
  const int per_group = std::clamp(wanted, 1, std::max(1, options_.max_sequences));
  std::vector<std::string> groups = cluster_->Groups();
  if (waves_counted_ && per_group == waves_per_group_ && groups == groups_) return;
  groups_ = std::move(groups);
  waves_per_group_ = per_group;
  waves_ = per_group * static_cast<int>(groups_.size());
  waves_counted_ = true;
  if (metrics_) metrics_->SetStepsInFlight(static_cast<int>(steps_.size()), waves_);
  absl::MutexLock lock(&mu_);
  waves_shown_ = waves_;
}

int Scheduler::GroupIndex(const std::string& group) const {
  const auto it = std::find(groups_.begin(), groups_.end(), group);
  return it == groups_.end() ? 0 : static_cast<int>(it - groups_.begin());
}

void Scheduler::AssignWaves(std::vector<ScheduledRequest>& running) {
  std::vector<int64_t> tokens(waves_, 0);
  std::vector<bool> busy(waves_);
  for (int w = 0; w < waves_; ++w) busy[w] = steps_.busy(w);
  for (const ScheduledRequest& s : running) {
    const Request& r = *s.request;
    if (r.wave >= 0 && r.wave < waves_) tokens[r.wave] += NextStepTokens(ProgressOf(r), options_.prefill_chunk);
  }
  for (ScheduledRequest& s : running) {
    Request& r = *s.request;
    // Its group's waves: a sequence's steps go to the group holding its state.
    const int first = GroupIndex(r.group) * waves_per_group_;
    // A request with a step out in a wave beyond the count keeps it until that step is back.
    if ((r.wave >= first && r.wave < first + waves_per_group_) || r.in_flight) continue;
    r.wave = first + ChooseWave(std::vector<int64_t>(tokens.begin() + first, tokens.begin() + first + waves_per_group_),
                                std::vector<bool>(busy.begin() + first, busy.begin() + first + waves_per_group_));
    tokens[r.wave] += NextStepTokens(ProgressOf(r), options_.prefill_chunk);
  }
}

absl::Status Scheduler::LaunchSteps(std::vector<ScheduledRequest>& running, PendingFrees& freed,
                                    const ClusterView& view) {
  StepLimits limits;
  limits.prefill_chunk = options_.prefill_chunk;
  limits.max_step_tokens = options_.max_step_tokens;
  limits.micro_batches = options_.micro_batches > 0 ? options_.micro_batches : cluster_->AutomaticMicroBatches();
  limits.min_sequences_per_micro_batch = options_.min_sequences_per_micro_batch;
  absl::Status sent;
  for (int w = 0; w < waves_ && sent.ok(); ++w) {
    if (steps_.busy(w)) continue;
    std::vector<std::shared_ptr<Request>> wave;
    std::vector<SequenceProgress> progress;
    for (const ScheduledRequest& s : running) {
      const Request& r = *s.request;
      if (r.wave != w || r.in_flight || r.done()) continue;
      wave.push_back(s.request);
      progress.push_back(ProgressOf(r));
    }
    StepsInFlight::Step step;
    step.plan = PlanStep(progress, limits);
    if (step.plan.empty()) continue;
    step.wave = w;
    step.group = groups_[w / waves_per_group_];
    std::vector<uint64_t>& frees = freed[step.group];
    step.step_id = next_step_++;
    const uint32_t count = static_cast<uint32_t>(step.plan.micro_batches.size());
    step.members.resize(count);
    for (uint32_t m = 0; m < count; ++m) {
      std::vector<SequenceStep> sequences;
      for (const PlannedSequence& p : step.plan.micro_batches[m]) {
        const std::shared_ptr<Request>& r = wave[p.index];
        sequences.push_back(ToSequenceStep(*r, p));
        step.members[m].push_back(r);
        r->sent_first_step = true;
      }
      step.sent.push_back(EncodeMicroBatch(step.step_id, m, count, sequences, m == 0 ? frees : std::vector<uint64_t>{}));
      step.sent.back().header.set_sequence_epoch(view.epoch);
    }
    frees.clear();
    if (metrics_ && steps_.size() > 0) metrics_->OverlappedStep();
    const transport::PeerId head = cluster_->head(step.group);
    sent = steps_.Launch(std::move(step), head);
  }
  if (metrics_) metrics_->SetStepsInFlight(static_cast<int>(steps_.size()), waves_);
  return sent;
}

absl::Status Scheduler::AwaitSteps(absl::Time look_again, PendingFrees& freed) {
  const absl::Time overdue = steps_.oldest_sent() + options_.step_timeout;
  absl::StatusOr<std::optional<StepsInFlight::Step>> done =
      steps_.Receive(std::min(look_again, overdue), waker_->StopToken());
  if (!done.ok()) return done.status();
  if (done->has_value()) {
    FinishStep(**done, freed);
    if (metrics_) metrics_->SetStepsInFlight(static_cast<int>(steps_.size()), waves_);
    return absl::OkStatus();
  }
  if (steps_.size() > 0 && absl::Now() >= overdue) {
    return absl::UnavailableError(absl::StrCat("step ", steps_.oldest_step(), " got no tokens within ",
                                               absl::FormatDuration(options_.step_timeout)));
  }
  return absl::OkStatus();
}

void Scheduler::FinishStep(StepsInFlight::Step& step, PendingFrees& freed) {
  const absl::Time now = absl::Now();
  const int64_t vocab = cluster_->config().vocab_size;
  for (size_t m = 0; m < step.members.size(); ++m) {
    std::vector<Request*> members;
    for (const std::shared_ptr<Request>& r : step.members[m]) members.push_back(r.get());
    const absl::StatusOr<MicroBatchResult>& reply = *step.replies[m];
    if (reply.ok()) {
      ApplyResult(members, step.plan.micro_batches[m], *reply, vocab, now, metrics_);
      continue;
    }
    // Where it failed for a reason of its own (bad state, a malformed reply): its requests end
    // with that error; their state goes with the next step, the other waves go on.
    for (Request* r : members) {
      if (r->done()) continue;
      r->Fail(reply.status());
      Ended("error");
    }
  }
  // Micro-batch 0 carried the step's frees; where it failed, the stages after the failure did not
  // see them. Sent again with the next step (a free of a sequence a stage does not hold is nothing).
  if (!step.replies.empty() && !step.replies[0]->ok()) {
    const auto& again = step.sent[0].header.freed_sequences();
    freed[step.group].insert(freed[step.group].end(), again.begin(), again.end());
  }
  Report(step, absl::ToDoubleSeconds(now - step.sent_at));
}

void Scheduler::Report(const StepsInFlight::Step& step, double seconds) {
  std::map<transport::PeerId, uint64_t> worker_micros;
  StepReport report;
  report.step_id = step.step_id;
  report.wave = step.wave;
  report.steps_in_flight = static_cast<int>(step.out_at_send);
  for (const auto& mb : step.plan.micro_batches) report.num_sequences += static_cast<int>(mb.size());
  report.num_tokens = step.plan.num_tokens;
  report.num_prompt_tokens = step.plan.num_prompt_tokens;
  report.seconds = seconds;
  for (const auto& reply : step.replies) {
    if (!reply->ok()) continue;
    for (const v1::WorkerTime& t : (*reply)->timings) {
      worker_micros[t.peer_id()] += t.micros();
      report.weight_bytes += static_cast<int64_t>(t.weight_bytes());
    }
  }
  if (options_.on_step) options_.on_step(report);
  if (!metrics_) return;
  metrics_->ObserveStep(seconds, step.plan.num_tokens);
  for (const auto& [peer, micros] : worker_micros) {
    const std::string name = cluster_->WorkerName(peer);
    if (!name.empty()) metrics_->ObserveWorkerStep(name, micros / 1e6);
  }
}

}  // namespace mmx::coordinator
