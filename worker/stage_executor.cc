#include "worker/stage_executor.h"

#include <algorithm>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/activation_rows.h"
#include "transport/message_keys.h"
#include "transport/wire_check.h"
#include "worker/decoder_layer.h"

namespace mmx::worker {

using transport::InboxKey;
using transport::MessageKind;
using transport::ReplyKey;
namespace {

using Clock = std::chrono::steady_clock;
uint32_t MicrosSince(Clock::time_point t) {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}

}  // namespace

// One micro-batch as it moves through this worker.
struct StageExecutor::MicroBatch {
  v1::StepHeader header;
  int64_t num_tokens = 0;
  int layer = 0;                  // next layer to run
  model::BatchLayout batch;
  LayerState state;               // state.x [T, H]: the residual stream
  std::vector<uint64_t> holds;    // its sequences, in progress here until it leaves
  bool failed = false;
  bool forwarded = false;
  Clock::time_point arrived;      // when this worker got the micro-batch
  int64_t weight_bytes = 0;       // this worker's weight bytes read for it
  std::map<transport::PeerId, v1::WorkerTime> expert_times;  // expert hosts' compute for it
};

// A micro-batch's expert parts on other workers, over the data plane: one kDispatch each, and
// the matching kCombine replies (an abort wakes the wait at once).
class StageExecutor::ExpertHosts final : public ExpertPeers {
 public:
  ExpertHosts(StageExecutor& stage, MicroBatch& mb) : stage_(stage), mb_(mb) {}

  absl::Status Send(int layer, const std::vector<const model::MoeExchange::Part*>& parts) override {
    std::vector<transport::Transport::Outgoing> sends;
    std::vector<transport::EncodedRows>& rows = stage_.dispatch_rows_;  // live until SendAll returns
    if (rows.size() < parts.size()) rows.resize(parts.size());
    for (size_t i = 0; i < parts.size(); ++i) {
      const model::MoeExchange::Part* part = parts[i];
      v1::DispatchHeader d;
      d.set_step_id(mb_.header.step_id());
      d.set_micro_batch(mb_.header.micro_batch());
      d.set_layer(layer);
      d.mutable_expert_ids()->Add(part->expert_ids.begin(), part->expert_ids.end());
      d.mutable_weights()->Add(part->weights.begin(), part->weights.end());
      d.set_rows_dtype(stage_.rows_dtype_);
      rows[i].Encode(part->rows.data(), static_cast<int64_t>(part->rows.size()), stage_.rows_dtype_);
      sends.push_back({part->holder, InboxKey(MessageKind::kDispatch), d.SerializeAsString(), rows[i].data(),
                       rows[i].bytes()});
    }
    return stage_.transport_->SendAll(sends);
  }

  absl::StatusOr<transport::PooledFloats> Collect(int layer, const model::MoeExchange::Part& part) override {
    const uint64_t key = ReplyKey(MessageKind::kCombine, mb_.header.step_id(), mb_.header.micro_batch(), layer);
    absl::StatusOr<transport::Message> reply =
        stage_.transport_->Receive(part.holder, key, stage_.reply_timeout_, stage_.abort_.get_token());
    if (stage_.abort_.stop_requested()) return absl::UnavailableError("the peer table was replaced during the step (a worker was lost)");
    if (absl::IsDeadlineExceeded(reply.status())) {
      return absl::DeadlineExceededError(absl::StrCat("expert host ", part.holder, " sent no combine for layer ",
                                                      layer, " within ", absl::FormatDuration(stage_.reply_timeout_)));
    }
    MMX_RETURN_IF_ERROR(reply.status());
    MMX_ASSIGN_OR_RETURN(v1::CombineHeader combine,
                         transport::CheckCombine(*reply, stage_.shard_->wire_limits(), part.num_rows()));
    v1::WorkerTime& time = mb_.expert_times[part.holder];
    time.set_peer_id(part.holder);
    time.set_micros(time.micros() + combine.compute_micros());
    time.set_weight_bytes(time.weight_bytes() + combine.weight_bytes());
    transport::PooledFloats results;
    transport::DecodeRows(std::move(reply->payload), part.num_rows() * stage_.shard_->config().hidden_size,
                          combine.rows_dtype(), &results);
    return results;
  }

  absl::StatusOr<uint32_t> Replacement(int layer, int expert) override {
    stage_.RefreshRoutes();  // the loss that failed the collect has been routed around
    const std::vector<transport::PeerId>& holders = stage_.routes_.ExpertHolders(layer, expert);
    for (transport::PeerId h : holders) {
      if (h == stage_.self_) return h;
    }
    // RouteAround came before the Disconnect that failed the collect (worker_runtime.cc), so a
    // lost host is out of the list unless it was the only holder.
    if (holders.empty()) return absl::UnavailableError(absl::StrCat("no holder of expert ", expert, " of layer ", layer));
    return holders.front();
  }

 private:
  StageExecutor& stage_;
  MicroBatch& mb_;
};

StageExecutor::StageExecutor(const LoadedShard* shard, transport::Transport* transport,
                             transport::PeerId self, Routes routes, absl::Duration reply_timeout)
    : shard_(shard), transport_(transport), self_(self), routes_(std::move(routes)),
      sequence_epoch_(routes_.sequence_epoch), reply_timeout_(reply_timeout) {}

void StageExecutor::UpdateRoutes(Routes routes) {
  absl::MutexLock lock(&routes_mu_);
  next_routes_ = std::move(routes);
  lost_hosts_.clear();
}

void StageExecutor::RouteAround(transport::PeerId peer) {
  absl::MutexLock lock(&routes_mu_);
  lost_hosts_.push_back(peer);
}

void StageExecutor::RefreshRoutes() {
  absl::MutexLock lock(&routes_mu_);
  if (next_routes_) {
    routes_ = *std::move(next_routes_);
    next_routes_.reset();
  }
  for (transport::PeerId peer : lost_hosts_) RemoveExpertHolder(routes_, peer);
}

void StageExecutor::ReportError(const v1::StepHeader& header, const absl::Status& status) {
  v1::TokensHeader reply;
  reply.set_step_id(header.step_id());
  reply.set_micro_batch(header.micro_batch());
  reply.set_error(absl::StrCat("worker ", shard_->shard.name, ": ", status.message()));
  reply.set_error_code(static_cast<int>(status.code()));
  (void)transport_->Send(routes_.coordinator, InboxKey(MessageKind::kTokens),
                         reply.SerializeAsString(), nullptr, 0);
}

absl::Status StageExecutor::Serve(transport::Message first, StepInbox& inbox) {
  std::deque<transport::Message> messages;
  messages.push_back(std::move(first));
  return Run(std::move(messages), &inbox);
}

absl::Status StageExecutor::HandleSteps(const std::vector<transport::Message>& messages) {
  return Run({messages.begin(), messages.end()}, nullptr);
}

absl::Status StageExecutor::Run(std::deque<transport::Message> messages, StepInbox* inbox) {
  InProgress active;
  absl::Status first_error;
  RefreshRoutes();
  for (transport::Message& m : messages) Take(std::move(m), active, first_error);
  const bool interleave = HasRemoteExperts();
  const int L = shard_->config().num_hidden_layers;
  // Taken between layers: a message this worker only passes through (it costs no layer here and
  // the next worker waits for it), and, where micro-batches interleave, the siblings of the steps
  // in progress. Other steps wait their turn: they would crowd this stage while the next idles.
  // Never one of another sequence epoch: that belongs to the executor that replaces this one.
  auto takes_now = [&](const transport::Message& m) {
    v1::StepHeader h;
    if (!h.ParseFromString(m.header) || h.sequence_epoch() != routes_.sequence_epoch) return false;
    const int layer = std::max(0, h.layer());
    if (layer >= L || routes_.attention_owner[layer] != self_) return true;
    if (!interleave) return false;
    for (const MicroBatch& mb : active) {
      if (mb.header.step_id() == h.step_id()) return true;
    }
    return false;
  };
  while (!active.empty() && !abort_.stop_requested()) {
    while (inbox) {
      std::optional<transport::Message> m = inbox->PollFor(takes_now);
      if (!m) break;
      Take(*std::move(m), active, first_error);
    }
    if (!interleave) {
      // Nothing to overlap here (every expert of these layers is local): one micro-batch at a
      // time, each on to the next stage as soon as it is done, so the stages work in a pipeline.
      InProgress one;
      one.splice(one.begin(), active, active.begin());
      RunOneLayer(one, first_error);
      active.splice(active.begin(), one);
      continue;
    }
    RunOneLayer(active, first_error);
  }
  if (abort_.stop_requested()) return absl::UnavailableError("the peer table was replaced during the step (a worker was lost)");
  return first_error;
}

bool StageExecutor::HasRemoteExperts() const {
  if (!shard_->attention) return false;
  const int num_experts = shard_->config().num_local_experts;
  for (int layer = shard_->attention->begin; layer < shard_->attention->end; ++layer) {
    for (int e = 0; e < num_experts; ++e) {
      const std::vector<transport::PeerId>& holders = routes_.ExpertHolders(layer, e);
      if (std::find(holders.begin(), holders.end(), self_) == holders.end()) return true;
    }
  }
  return false;
}

void StageExecutor::Take(transport::Message message, InProgress& active, absl::Status& first_error) {
  MicroBatch& mb = active.emplace_back();
  auto drop = [&] { active.pop_back(); };
  absl::StatusOr<v1::StepHeader> header = transport::CheckStep(message, shard_->wire_limits());
  if (!header.ok()) {
    // A header that does not parse cannot be answered by step id; the coordinator's timeout covers it.
    if (mb.header.ParseFromString(message.header)) ReportError(mb.header, header.status());
    first_error.Update(header.status());
    drop();
    return;
  }
  mb.header = *std::move(header);
  if (mb.header.sequence_epoch() != routes_.sequence_epoch) {
    // A step of a voided epoch (delayed in the network past a failover): no one waits for it,
    // and its sequences' state here belongs to their replay now. Dropped unanswered. (One of a
    // newer epoch cannot come: the coordinator sends a new epoch's steps only once every worker
    // applied its peer table.)
    first_error.Update(absl::AbortedError(absl::StrCat("dropped step ", mb.header.step_id(), " of sequence epoch ",
                                                       mb.header.sequence_epoch(), " (serving epoch ",
                                                       routes_.sequence_epoch, ")")));
    drop();
    return;
  }
  mb.arrived = Clock::now();
  absl::Status st = Prepare(mb, message);
  // As Prepare decided: the layer's owner is this worker (and its range starts there).
  const int L = shard_->config().num_hidden_layers;
  const bool runs_here = st.ok() && mb.layer >= 0 && mb.layer < L && routes_.attention_owner[mb.layer] == self_;
  if (st.ok() && !runs_here) st = Forward(mb);  // a head without layer 0, or the tail only
  if (!st.ok()) {
    ReportError(mb.header, st);
    first_error.Update(st);
  }
  if (!st.ok() || !runs_here) {
    Release(mb);
    drop();
  }
}

void StageExecutor::Release(const MicroBatch& mb) {
  for (uint64_t id : mb.holds) {
    in_progress_.erase(id);
    if (free_later_.erase(id) > 0) states_.erase(id);
  }
}

void StageExecutor::RunOneLayer(InProgress& active, absl::Status& first_error) {
  auto fail = [&](MicroBatch& mb, const absl::Status& st) {
    mb.failed = true;
    ReportError(mb.header, st);
    first_error.Update(st);
  };
  const transport::PeerId self = self_;
  const ChooseHolders choose = [this, self](int layer, const model::Routing& routing) {
    const std::vector<transport::PeerId> host = ChooseExpertHosts(routes_, layer, routing.expert_ids, self);
    std::vector<uint32_t> holders(routing.expert_ids.size());
    for (size_t p = 0; p < holders.size(); ++p) holders[p] = host[routing.expert_ids[p]];
    return holders;
  };
  // Every micro-batch's attention and dispatch, then every micro-batch's combine.
  const plan::LayerRange range = *shard_->attention;
  RefreshRoutes();
  for (MicroBatch& mb : active) {
    ExpertHosts hosts(*this, mb);
    mb.state.expert_bytes = 0;
    absl::Status st = BeginLayer(*shard_->compute, mb.layer, mb.batch, self_, choose, &hosts, mb.state);
    if (!st.ok()) {
      fail(mb, st);
      continue;
    }
    mb.weight_bytes += model::AttentionBlockBytes(shard_->attention_blocks[mb.layer - range.begin]) + mb.state.expert_bytes;
  }
  for (MicroBatch& mb : active) {
    if (mb.failed) continue;
    ExpertHosts hosts(*this, mb);
    absl::Status st = EndLayer(*shard_->compute, shard_->config(), mb.layer, self_, &hosts, mb.state);
    if (!st.ok()) {
      fail(mb, st);
      continue;
    }
    if (++mb.layer == range.end) {
      st = Forward(mb);  // on to the next stage while the others go on here
      mb.forwarded = true;
      if (!st.ok()) fail(mb, st);
    }
  }
  for (auto it = active.begin(); it != active.end();) {
    if (!it->failed && !it->forwarded) {
      ++it;
      continue;
    }
    Release(*it);
    it = active.erase(it);
  }
}

absl::Status StageExecutor::Prepare(MicroBatch& mb, transport::Message& message) {
  const model::ModelConfig& c = shard_->config();
  const int64_t H = c.hidden_size;
  for (uint64_t id : mb.header.freed_sequences()) {
    if (in_progress_.contains(id)) {
      free_later_.insert(id);
    } else {
      states_.erase(id);
    }
  }
  mb.num_tokens = transport::StepTokens(mb.header);
  mb.layer = mb.header.layer();
  if (mb.layer == -1) {
    mb.state.x.resize(mb.num_tokens * H);
    MMX_RETURN_IF_ERROR(shard_->compute->Embed(reinterpret_cast<const int32_t*>(message.payload.data()),
                                               mb.num_tokens, mb.state.x.data()));
    mb.weight_bytes += mb.num_tokens * H * static_cast<int64_t>(DTypeSize(shard_->embedding->dtype));
    mb.layer = 0;
  } else {
    transport::DecodeRows(std::move(message.payload), mb.num_tokens * H, mb.header.rows_dtype(), &mb.state.x);
  }
  if (mb.layer >= c.num_hidden_layers || routes_.attention_owner[mb.layer] != self_) return absl::OkStatus();
  if (!shard_->attention || shard_->attention->begin != mb.layer) {
    return absl::FailedPreconditionError(absl::StrCat("routed layer ", mb.layer, " but its range does not start there"));
  }
  const plan::LayerRange range = *shard_->attention;
  for (const auto& s : mb.header.sequences()) {
    if (in_progress_.contains(s.sequence_id())) {
      return absl::FailedPreconditionError(absl::StrCat("sequence ", s.sequence_id(),
                                                        " is already in a micro-batch in progress here"));
    }
  }
  for (const auto& s : mb.header.sequences()) {
    auto& state = states_[s.sequence_id()];
    if (s.start_position() == 0) {
      MMX_ASSIGN_OR_RETURN(state, shard_->compute->NewSequence(range.begin, range.end, kv_dtype_));
    } else if (!state || state->length() != s.start_position()) {
      const int64_t have = state ? state->length() : -1;
      states_.erase(s.sequence_id());
      return absl::FailedPreconditionError(absl::StrCat(
          "sequence ", s.sequence_id(), " at position ", s.start_position(), " but this stage holds ",
          have < 0 ? std::string("no state for it") : absl::StrCat(have, " tokens of it"),
          " (was the worker restarted?)"));
    }
    mb.batch.Add(s.num_tokens(), s.start_position(), state.get());
  }
  for (const auto& s : mb.header.sequences()) {
    in_progress_.insert(s.sequence_id());
    mb.holds.push_back(s.sequence_id());
  }
  return absl::OkStatus();
}

absl::Status StageExecutor::Forward(MicroBatch& mb) {
  const int L = shard_->config().num_hidden_layers;
  for (auto& [peer, time] : mb.expert_times) *mb.header.add_timings() = std::move(time);
  mb.expert_times.clear();
  if (mb.layer == L && routes_.tail == self_) return RunTail(mb);
  v1::WorkerTime* own = mb.header.add_timings();
  own->set_peer_id(self_);
  own->set_micros(MicrosSince(mb.arrived));
  own->set_weight_bytes(mb.weight_bytes);
  const transport::PeerId next = mb.layer == L ? routes_.tail : routes_.attention_owner[mb.layer];
  v1::StepHeader header = mb.header;
  header.set_layer(mb.layer);
  header.set_rows_dtype(rows_dtype_);
  forward_rows_.Encode(mb.state.x.data(), static_cast<int64_t>(mb.state.x.size()), rows_dtype_);
  return transport_->Send(next, InboxKey(MessageKind::kStep), header.SerializeAsString(), forward_rows_.data(),
                          forward_rows_.bytes());
}

absl::Status StageExecutor::RunTail(MicroBatch& mb) {
  if (!shard_->tail) return absl::FailedPreconditionError("routed the tail but holds no lm_head");
  std::vector<float> logits;
  MMX_ASSIGN_OR_RETURN(v1::TokensHeader reply, tail_.Run(*shard_->compute, mb.header, mb.state.x.data(),
                                                         shard_->config().vocab_size, &logits));
  *reply.mutable_timings() = mb.header.timings();
  v1::WorkerTime* own = reply.add_timings();
  own->set_peer_id(self_);
  own->set_micros(MicrosSince(mb.arrived));
  const bool read_lm_head = reply.tokens_size() > 0 || reply.logits_size() > 0;
  own->set_weight_bytes(mb.weight_bytes + (read_lm_head ? model::WeightBytes(shard_->tail->lm_head) : 0));
  return transport_->Send(routes_.coordinator,
                          InboxKey(MessageKind::kTokens),
                          reply.SerializeAsString(), logits.data(), logits.size() * sizeof(float));
}

}  // namespace mmx::worker
