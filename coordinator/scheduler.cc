#include "coordinator/scheduler.h"

#include <algorithm>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "mmx/v1/wire.pb.h"
#include "transport/message_keys.h"
#include "transport/wire_check.h"

namespace mmx::coordinator {

using transport::InboxKey;
using transport::MessageKind;
using transport::ReplyKey;

Scheduler::Scheduler(Cluster* cluster, transport::Transport* transport, SchedulerOptions options, Metrics* metrics)
    : cluster_(cluster), transport_(transport), options_(options), metrics_(metrics) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

absl::Status Scheduler::Submit(std::shared_ptr<Request> request) {
  absl::MutexLock lock(&mu_);
  if (static_cast<int>(queue_.size()) >= options_.max_queue) {
    return absl::ResourceExhaustedError(absl::StrCat("the queue is full (", options_.max_queue,
                                                     " requests waiting, --max-queue); retry later"));
  }
  const std::string source = request->params().source;
  queue_.Push(source, Live{std::move(request), absl::Now()});
  if (metrics_) metrics_->SetQueueDepth(static_cast<int>(queue_.size()));
  return absl::OkStatus();
}

int Scheduler::running() const {
  absl::MutexLock lock(&mu_);
  return running_count_;
}

int Scheduler::queued() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int>(queue_.size());
}

void Scheduler::Ended(const std::string& outcome) {
  if (metrics_) metrics_->RequestEnded(outcome);
}

void Scheduler::Admit(std::vector<Live>& running) {
  const bool ready = cluster_->ready();
  if (!ready) {
    // Waiting requests get a bounded wait for the cluster, then a clear UNAVAILABLE.
    const absl::Time now = absl::Now();
    queue_.RemoveIf(
        [&](const Live& l) { return l.request->cancelled() || now - l.queued_at > options_.queue_timeout; },
        [&](Live& l) {
          l.request->Fail(l.request->cancelled() ? absl::CancelledError("cancelled by the client")
                                                 : absl::UnavailableError(cluster_->NotReadyReason()));
          Ended(l.request->cancelled() ? "cancelled" : "error");
        });
    return;
  }
  const uint64_t epoch = cluster_->epoch();
  if (!budget_ || budget_epoch_ != epoch) {
    std::vector<StageMemory> stages;
    for (const Cluster::Stage& s : cluster_->Stages()) stages.push_back({s.worker, s.begin, s.end, s.state_memory_bytes});
    budget_ = std::make_unique<StateBudget>(cluster_->config(), std::move(stages));
    budget_epoch_ = epoch;
  }
  while (!queue_.empty() && static_cast<int>(running.size()) < options_.max_sequences) {
    Live& front = queue_.Front();
    if (front.request->cancelled()) {
      Live l = queue_.Pop();
      l.request->Fail(absl::CancelledError("cancelled by the client"));
      Ended("cancelled");
      continue;
    }
    std::string why;
    const StateBudget::Admission verdict =
        budget_->TryReserve(front.request->id(), front.request->params().max_positions(), &why);
    if (verdict == StateBudget::Admission::kWait) break;  // keeps its turn until state frees up
    Live l = queue_.Pop();
    if (verdict == StateBudget::Admission::kNever) {
      l.request->Fail(absl::ResourceExhaustedError(why));
      Ended("error");
      continue;
    }
    running.push_back(std::move(l));
  }
}

void Scheduler::Loop() {
  std::vector<Live> running;
  std::vector<uint64_t> freed;
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto has_work = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || !queue_.empty() || !running.empty(); };
      mu_.AwaitWithTimeout(absl::Condition(&has_work), absl::Milliseconds(100));
      if (stop_) break;
      // Cancelled requests leave now; their state goes with the next step header.
      for (Live& l : running) {
        if (l.request->cancelled() && !l.request->done()) {
          l.request->Fail(absl::CancelledError("cancelled by the client"));
          Ended("cancelled");
        }
      }
      // Requests that ended (cancelled, finished) leave the running set; free their state.
      for (auto it = running.begin(); it != running.end();) {
        if (it->request->done()) {
          if (it->request->sent_first_step) freed.push_back(it->request->id());
          if (budget_) budget_->Release(it->request->id());
          it = running.erase(it);
        } else {
          ++it;
        }
      }
      Admit(running);
      running_count_ = static_cast<int>(running.size());
      if (metrics_) {
        metrics_->SetQueueDepth(static_cast<int>(queue_.size()));
        metrics_->SetRunning(running_count_);
      }
    }
    if (running.empty()) continue;
    if (!cluster_->ready()) {
      for (Live& l : running) {
        l.request->Fail(absl::UnavailableError(cluster_->NotReadyReason()));
        Ended("error");
      }
      running.clear();
      freed.clear();  // a new peer table resets every worker's sequence state
      continue;
    }
    absl::Status status = Step(running, freed);
    if (!status.ok()) {
      for (Live& l : running) {
        if (!l.request->done()) Ended("error");
        l.request->Fail(status);
      }
      for (Live& l : running) {
        if (l.request->sent_first_step) freed.push_back(l.request->id());
      }
      absl::MutexLock lock(&mu_);
      for (Live& l : running) {
        if (budget_) budget_->Release(l.request->id());
      }
      running.clear();
    }
  }
  for (Live& l : running) l.request->Fail(absl::UnavailableError("the coordinator is shutting down"));
  absl::MutexLock lock(&mu_);
  queue_.RemoveIf([](const Live&) { return true; },
                  [](Live& l) { l.request->Fail(absl::UnavailableError("the coordinator is shutting down")); });
}

absl::Status Scheduler::Step(std::vector<Live>& running, std::vector<uint64_t>& freed) {
  const uint64_t epoch = cluster_->epoch();
  const uint64_t step_id = next_step_++;

  // What each sequence runs this step: decode tokens first, then prompt chunks within the
  // step's token budget (the oldest prompt always gets a chunk, so prefill always progresses).
  struct Planned {
    Live* live;
    int64_t tokens;
  };
  std::vector<Planned> plan;
  int64_t budget = options_.max_step_tokens;
  for (Live& l : running) {
    if (l.request->prompt_done >= static_cast<int64_t>(l.request->params().prompt.size())) {
      plan.push_back({&l, 1});
      --budget;
    }
  }
  bool prefill_planned = false;
  for (Live& l : running) {
    const int64_t left = static_cast<int64_t>(l.request->params().prompt.size()) - l.request->prompt_done;
    if (left <= 0) continue;
    int64_t chunk = std::min<int64_t>({options_.prefill_chunk, left, std::max<int64_t>(budget, 0)});
    if (chunk == 0 && !prefill_planned) chunk = std::min<int64_t>(options_.prefill_chunk, left);
    if (chunk == 0) continue;
    plan.push_back({&l, chunk});
    budget -= chunk;
    prefill_planned = true;
  }
  const int n = static_cast<int>(plan.size());
  const int wanted_mb = options_.micro_batches > 0 ? options_.micro_batches : cluster_->AutomaticMicroBatches();
  const int num_mb = std::max(1, std::min(wanted_mb, n / std::max(1, options_.min_sequences_per_micro_batch)));

  // Build every micro-batch's header and token payload.
  struct MicroBatch {
    v1::StepHeader header;
    std::vector<int32_t> tokens;
    std::vector<Live*> members;
  };
  std::vector<MicroBatch> mbs(num_mb);
  int64_t step_tokens = 0, prompt_tokens = 0;
  for (int i = 0; i < n; ++i) {
    Live& l = *plan[i].live;
    Request& r = *l.request;
    MicroBatch& mb = mbs[i * num_mb / n];
    v1::StepSequence* s = mb.header.add_sequences();
    const int64_t P = static_cast<int64_t>(r.params().prompt.size());
    s->set_sequence_id(r.id());
    if (r.prompt_done < P) {
      const int64_t chunk = plan[i].tokens;
      s->set_start_position(r.prompt_done);
      s->set_num_tokens(static_cast<int32_t>(chunk));
      mb.tokens.insert(mb.tokens.end(), r.params().prompt.begin() + r.prompt_done,
                       r.params().prompt.begin() + r.prompt_done + chunk);
      s->set_sample(r.prompt_done + chunk == P);
      prompt_tokens += chunk;
    } else {
      s->set_start_position(P + static_cast<int64_t>(r.output.size()) - 1);
      s->set_num_tokens(1);
      mb.tokens.push_back(r.output.back());
      s->set_sample(true);
    }
    step_tokens += s->num_tokens();
    const model::SamplingParams& sp = r.params().sampling;
    s->set_temperature(sp.temperature);
    s->set_top_p(sp.top_p);
    s->set_top_k(sp.top_k);
    s->set_seed(sp.seed);
    s->set_logprobs(r.params().logprobs);
    s->set_return_logits(r.params().return_logits);
    mb.members.push_back(&l);
  }
  for (int m = 0; m < num_mb; ++m) {
    mbs[m].header.set_step_id(step_id);
    mbs[m].header.set_micro_batch(m);
    mbs[m].header.set_layer(-1);
    mbs[m].header.set_num_micro_batches(num_mb);
  }
  for (uint64_t id : freed) mbs[0].header.add_freed_sequences(id);
  freed.clear();

  const absl::Time step_start = absl::Now();
  for (MicroBatch& mb : mbs) {
    MMX_RETURN_IF_ERROR(transport_->Send(cluster_->head(), InboxKey(MessageKind::kStep), mb.header.SerializeAsString(),
                                         mb.tokens.data(), mb.tokens.size() * sizeof(int32_t)));
    for (Live* l : mb.members) l->request->sent_first_step = true;
  }

  const model::ModelConfig& config = cluster_->config();
  const transport::WireLimits limits{config.hidden_size, config.vocab_size, config.num_hidden_layers,
                                     config.num_local_experts};
  const absl::Time deadline = absl::Now() + options_.step_timeout;
  std::map<transport::PeerId, uint64_t> worker_micros;
  int64_t weight_bytes = 0;
  for (int m = 0; m < num_mb; ++m) {
    MicroBatch& mb = mbs[m];
    const uint64_t key = ReplyKey(MessageKind::kTokens, step_id, m, 0);
    absl::StatusOr<transport::Message> reply;
    while (true) {
      // Short waits so that a worker lost mid-step ends the step within a poll interval.
      reply = transport_->ReceiveAny(key, absl::Milliseconds(50));
      if (reply.ok() || !absl::IsDeadlineExceeded(reply.status())) break;
      if (cluster_->epoch() != epoch) return absl::UnavailableError(cluster_->NotReadyReason());
      if (absl::Now() > deadline) {
        return absl::UnavailableError(absl::StrCat("step ", step_id, " got no tokens within ",
                                                   absl::FormatDuration(options_.step_timeout)));
      }
    }
    MMX_RETURN_IF_ERROR(reply.status());
    MMX_ASSIGN_OR_RETURN(v1::TokensHeader tokens, transport::CheckTokens(*reply, limits));
    if (!tokens.error().empty()) return transport::RemoteError(tokens.error_code(), tokens.error());
    for (const v1::WorkerTime& t : tokens.timings()) {
      worker_micros[t.peer_id()] += t.micros();
      weight_bytes += static_cast<int64_t>(t.weight_bytes());
    }
    {
      const float* rows = reinterpret_cast<const float*>(reply->payload.data());
      std::map<uint64_t, Live*> member_of;
      for (Live* l : mb.members) member_of[l->request->id()] = l;
      for (const v1::LogitsRows& entry : tokens.logits()) {
        auto it = member_of.find(entry.sequence_id());
        if (it == member_of.end()) {
          return absl::DataLossError(absl::StrCat("the tail returned logits for sequence ", entry.sequence_id(),
                                                  ", which is not in its micro-batch"));
        }
        it->second->request->AppendLogits(rows, entry.num_rows(), config.vocab_size);
        rows += static_cast<int64_t>(entry.num_rows()) * config.vocab_size;
      }
    }

    const absl::Time now = absl::Now();
    std::map<uint64_t, const v1::SampledToken*> by_seq;
    for (const auto& t : tokens.tokens()) by_seq[t.sequence_id()] = &t;
    for (size_t i = 0; i < mb.members.size(); ++i) {
      Live& l = *mb.members[i];
      Request& r = *l.request;
      const v1::StepSequence& s = mb.header.sequences(static_cast<int>(i));
      const int64_t P = static_cast<int64_t>(r.params().prompt.size());
      if (r.prompt_done < P) r.prompt_done += s.num_tokens();
      if (!s.sample()) continue;
      auto it = by_seq.find(r.id());
      if (it == by_seq.end()) return absl::DataLossError(absl::StrCat("the tail sent no token for sequence ", r.id()));
      const v1::SampledToken& t = *it->second;
      if (r.done()) continue;  // cancelled meanwhile
      if (metrics_) {
        if (r.output.empty()) {
          metrics_->ObserveTimeToFirstToken(absl::ToDoubleSeconds(now - r.created()));
        } else {
          metrics_->ObserveTimePerOutputToken(absl::ToDoubleSeconds(now - l.last_token_at));
        }
        metrics_->GeneratedTokens(1);
      }
      l.last_token_at = now;
      TokenEvent ev;
      ev.token_id = t.token_id();
      ev.logprob = t.logprob();
      ev.top_ids.assign(t.top_token_ids().begin(), t.top_token_ids().end());
      ev.top_logprobs.assign(t.top_logprobs().begin(), t.top_logprobs().end());
      r.output.push_back(t.token_id());
      const auto& stops = r.params().stop_ids;
      const bool stop_id = std::find(stops.begin(), stops.end(), t.token_id()) != stops.end();
      const bool length = static_cast<int>(r.output.size()) >= r.params().max_tokens;
      const bool stop_string = r.AppendToken(std::move(ev), /*last=*/stop_id || length);
      if (stop_id || stop_string) {
        r.Finish("stop");
        Ended("stop");
      } else if (length) {
        r.Finish("length");
        Ended("length");
      }
    }
  }
  const double step_seconds = absl::ToDoubleSeconds(absl::Now() - step_start);
  if (options_.on_step) {
    StepReport report;
    report.step_id = step_id;
    report.num_sequences = n;
    report.num_tokens = step_tokens;
    report.num_prompt_tokens = prompt_tokens;
    report.seconds = step_seconds;
    report.weight_bytes = weight_bytes;
    options_.on_step(report);
  }
  if (metrics_) {
    metrics_->ObserveStep(step_seconds, step_tokens);
    for (const auto& [peer, micros] : worker_micros) {
      const std::string name = cluster_->WorkerName(peer);
      if (!name.empty()) metrics_->ObserveWorkerStep(name, micros / 1e6);
    }
  }
  return absl::OkStatus();
}

}  // namespace mmx::coordinator
