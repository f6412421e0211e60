#include "worker/stage_executor.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/layers.h"
#include "transport/message_keys.h"
#include "transport/wire_check.h"

namespace mmx::worker {

using transport::InboxKey;
using transport::MessageKind;
using transport::ReplyKey;
using transport::CheckCombine;
using transport::CheckDispatch;
using transport::CheckStep;
using transport::StepTokens;
namespace {

model::SamplingParams ToSampling(const v1::StepSequence& s) {
  model::SamplingParams p;
  p.temperature = s.temperature();
  p.top_p = s.top_p() > 0.f ? s.top_p() : 1.f;
  p.top_k = s.top_k();
  p.seed = s.seed();
  return p;
}

// log-softmax of the token and the top `n` alternatives, from raw logits.
void FillLogprobs(const float* logits, int64_t vocab, int n, v1::SampledToken* out) {
  float max_logit = *std::max_element(logits, logits + vocab);
  double sum = 0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - max_logit));
  const float lse = max_logit + static_cast<float>(std::log(sum));
  out->set_logprob(logits[out->token_id()] - lse);
  if (n <= 0) return;
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  n = static_cast<int>(std::min<int64_t>(n, vocab));
  std::partial_sort(ids.begin(), ids.begin() + n, ids.end(),
                    [&](int32_t a, int32_t b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  for (int i = 0; i < n; ++i) {
    out->add_top_token_ids(ids[i]);
    out->add_top_logprobs(logits[ids[i]] - lse);
  }
}

}  // namespace

// One micro-batch as it moves through this worker.
struct StageExecutor::PendingMoe {
  std::map<transport::PeerId, std::vector<int64_t>> by_owner;  // pairs per expert owner
  std::vector<float> contributions;                             // [T*K, H]
};

namespace {
using Clock = std::chrono::steady_clock;
uint32_t MicrosSince(Clock::time_point t) {
  return static_cast<uint32_t>(std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count());
}
}  // namespace

struct StageExecutor::MicroBatch {
  v1::StepHeader header;
  int64_t num_tokens = 0;
  int layer = 0;                  // next layer to run
  std::vector<float> x;           // [T, H]
  model::BatchLayout batch;
  std::vector<float> residual;    // postnorm = false only
  model::Routing routing;
  PendingMoe moe;
  bool failed = false;
  bool forwarded = false;
  Clock::time_point arrived;                        // when this worker got the micro-batch
  int64_t weight_bytes = 0;                         // this worker's weight bytes read for it
  std::map<transport::PeerId, v1::WorkerTime> expert_times;  // expert hosts' compute for it
};

StageExecutor::StageExecutor(const LoadedShard* shard, transport::Transport* transport,
                             transport::PeerId self, Routes routes, absl::Duration reply_timeout)
    : shard_(shard), transport_(transport), self_(self), routes_(std::move(routes)),
      reply_timeout_(reply_timeout) {}

void StageExecutor::Reset() {
  states_.clear();
  samplers_.clear();
}

void StageExecutor::ReportError(const v1::StepHeader& header, const absl::Status& status) {
  v1::TokensHeader reply;
  reply.set_step_id(header.step_id());
  reply.set_micro_batch(header.micro_batch());
  reply.set_error(absl::StrCat("worker ", shard_->shard.name, ": ", status.message()));
  reply.set_error_code(static_cast<int>(status.code()));
  (void)transport_->Send(routes_.coordinator, ReplyKey(MessageKind::kTokens, header.step_id(), header.micro_batch(), 0),
                         reply.SerializeAsString(), nullptr, 0);
}

absl::Status StageExecutor::HandleSteps(const std::vector<transport::Message>& messages) {
  std::vector<MicroBatch> mbs(messages.size());
  absl::Status first_error;
  auto fail = [&](MicroBatch& mb, const absl::Status& st) {
    mb.failed = true;
    ReportError(mb.header, st);
    first_error.Update(st);
  };
  for (size_t i = 0; i < messages.size(); ++i) {
    absl::StatusOr<v1::StepHeader> header = CheckStep(messages[i], shard_->wire_limits());
    if (!header.ok()) {
      // A header that does not parse cannot be answered by step id; the coordinator's timeout covers it.
      mbs[i].failed = true;
      if (mbs[i].header.ParseFromString(messages[i].header)) ReportError(mbs[i].header, header.status());
      first_error.Update(header.status());
      continue;
    }
    mbs[i].header = *std::move(header);
    mbs[i].arrived = Clock::now();
    absl::Status st = Prepare(mbs[i], messages[i]);
    if (!st.ok()) fail(mbs[i], st);
  }

  // Ping-pong over the layers this worker owns: every micro-batch's attention and dispatch, then
  // every micro-batch's combine. Micro-batches that reached us at the same layer move together.
  const bool owns = shard_->attention.has_value();
  const int end = owns ? shard_->attention->end : 0;
  for (int layer = owns ? shard_->attention->begin : 0; owns && layer < end; ++layer) {
    if (abort_.stop_requested()) return absl::AbortedError("the peer table was replaced during the step");
    for (MicroBatch& mb : mbs) {
      if (mb.failed || mb.layer != layer) continue;
      absl::Status st = shard_->compute->AttentionBlock(layer, mb.batch, mb.x.data(), &mb.residual, &mb.routing);
      if (!st.ok()) {
        fail(mb, st);
        continue;
      }
      mb.weight_bytes += model::AttentionBlockBytes(shard_->attention_blocks[layer - shard_->attention->begin]);
      st = StartMoe(mb, layer);
      if (!st.ok()) fail(mb, st);
    }
    for (MicroBatch& mb : mbs) {
      if (mb.failed || mb.layer != layer) continue;
      absl::Status st = FinishMoe(mb, layer);
      if (!st.ok()) {
        fail(mb, st);
        continue;
      }
      ++mb.layer;
      if (mb.layer == end) {
        st = Forward(mb);  // on to the next stage while the other micro-batches finish
        mb.forwarded = true;
        if (!st.ok()) fail(mb, st);
      }
    }
  }
  // Micro-batches this worker only passes through (head without layer 0, tail only).
  for (MicroBatch& mb : mbs) {
    if (mb.failed || mb.forwarded) continue;
    absl::Status st = Forward(mb);
    if (!st.ok()) fail(mb, st);
  }
  return first_error;
}

absl::Status StageExecutor::Prepare(MicroBatch& mb, const transport::Message& message) {
  const model::ModelConfig& c = shard_->config();
  const int64_t H = c.hidden_size;
  for (uint64_t id : mb.header.freed_sequences()) {
    states_.erase(id);
    samplers_.erase(id);
  }
  mb.num_tokens = StepTokens(mb.header);
  mb.x.resize(mb.num_tokens * H);
  mb.layer = mb.header.layer();
  if (mb.layer == -1) {
    MMX_RETURN_IF_ERROR(shard_->compute->Embed(reinterpret_cast<const int32_t*>(message.payload.data()),
                                               mb.num_tokens, mb.x.data()));
    mb.weight_bytes += mb.num_tokens * c.hidden_size * static_cast<int64_t>(DTypeSize(shard_->embedding->dtype));
    mb.layer = 0;
  } else {
    std::memcpy(mb.x.data(), message.payload.data(), mb.x.size() * sizeof(float));
  }
  if (mb.layer >= c.num_hidden_layers || routes_.attention_owner[mb.layer] != self_) return absl::OkStatus();
  if (!shard_->attention || shard_->attention->begin != mb.layer) {
    return absl::FailedPreconditionError(absl::StrCat("routed layer ", mb.layer, " but its range does not start there"));
  }
  const plan::LayerRange range = *shard_->attention;
  for (const auto& s : mb.header.sequences()) {
    auto& state = states_[s.sequence_id()];
    if (s.start_position() == 0) {
      MMX_ASSIGN_OR_RETURN(state, shard_->compute->NewSequence(range.begin, range.end));
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
  return absl::OkStatus();
}

absl::Status StageExecutor::Forward(MicroBatch& mb) {
  const model::ModelConfig& c = shard_->config();
  const int L = c.num_hidden_layers;
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
  return transport_->Send(next, InboxKey(MessageKind::kStep), header.SerializeAsString(), mb.x.data(),
                          mb.x.size() * sizeof(float));
}

absl::Status StageExecutor::StartMoe(MicroBatch& mb, int layer) {
  const model::ModelConfig& c = shard_->config();
  const int64_t H = c.hidden_size;
  const model::Routing& routing = mb.routing;
  const int K = routing.k;
  const int64_t P = mb.num_tokens * K;
  const float* w = mb.x.data();
  PendingMoe& moe = mb.moe;
  moe.by_owner.clear();
  moe.contributions.resize(P * H);  // row t*K + j = pair (t, j)
  const std::vector<transport::PeerId> host = ChooseExpertHosts(
      routes_, layer, std::vector<int>(routing.expert_ids.begin(), routing.expert_ids.begin() + P), self_);
  for (int64_t p = 0; p < P; ++p) moe.by_owner[host[routing.expert_ids[p]]].push_back(p);

  std::vector<float> rows, weights;
  std::vector<int> ids;
  auto gather = [&](const std::vector<int64_t>& pairs, std::vector<float>& rows_out) {
    rows_out.resize(pairs.size() * H);
    ids.resize(pairs.size());
    weights.resize(pairs.size());
    for (size_t i = 0; i < pairs.size(); ++i) {
      std::copy_n(w + (pairs[i] / K) * H, H, rows_out.data() + i * H);
      ids[i] = routing.expert_ids[pairs[i]];
      weights[i] = routing.weights[pairs[i]];
    }
  };
  // Remote hosts first, so they work while this worker computes its own pairs; all of them at
  // once, so that no host waits for another's transfer.
  std::vector<transport::Transport::Outgoing> sends;
  std::vector<std::vector<float>> remote_rows;
  remote_rows.reserve(moe.by_owner.size());
  for (const auto& [owner, pairs] : moe.by_owner) {
    if (owner == self_) continue;
    remote_rows.emplace_back();
    gather(pairs, remote_rows.back());
    v1::DispatchHeader d;
    d.set_step_id(mb.header.step_id());
    d.set_micro_batch(mb.header.micro_batch());
    d.set_layer(layer);
    d.mutable_expert_ids()->Add(ids.begin(), ids.end());
    d.mutable_weights()->Add(weights.begin(), weights.end());
    sends.push_back({owner, InboxKey(MessageKind::kDispatch), d.SerializeAsString(), remote_rows.back().data(),
                     remote_rows.back().size() * sizeof(float)});
  }
  MMX_RETURN_IF_ERROR(transport_->SendAll(sends));
  if (auto local = moe.by_owner.find(self_); local != moe.by_owner.end()) {
    gather(local->second, rows);
    std::vector<float> out(rows.size());
    MMX_ASSIGN_OR_RETURN(const int64_t bytes, shard_->compute->ExpertPairs(layer, rows.data(), ids.data(),
                                                                          weights.data(),
                                                                          static_cast<int64_t>(ids.size()), out.data()));
    mb.weight_bytes += bytes;
    for (size_t i = 0; i < local->second.size(); ++i) {
      std::copy_n(out.data() + i * H, H, moe.contributions.data() + local->second[i] * H);
    }
  }
  return absl::OkStatus();
}

absl::Status StageExecutor::FinishMoe(MicroBatch& mb, int layer) {
  const model::ModelConfig& c = shard_->config();
  const int64_t H = c.hidden_size;
  PendingMoe& moe = mb.moe;
  for (const auto& [owner, pairs] : moe.by_owner) {
    if (owner == self_) continue;
    // An abort (a new peer table) wakes this wait at once.
    const uint64_t key = ReplyKey(MessageKind::kCombine, mb.header.step_id(), mb.header.micro_batch(), layer);
    absl::StatusOr<transport::Message> received = transport_->Receive(owner, key, reply_timeout_, abort_.get_token());
    if (abort_.stop_requested()) return absl::AbortedError("the peer table was replaced during the step");
    if (absl::IsDeadlineExceeded(received.status())) {
      return absl::DeadlineExceededError(absl::StrCat("expert host ", owner, " sent no combine for layer ", layer,
                                                      " within ", absl::FormatDuration(reply_timeout_)));
    }
    MMX_RETURN_IF_ERROR(received.status());
    transport::Message reply = *std::move(received);
    MMX_ASSIGN_OR_RETURN(v1::CombineHeader combine,
                         CheckCombine(reply, shard_->wire_limits(), static_cast<int64_t>(pairs.size())));
    v1::WorkerTime& time = mb.expert_times[owner];
    time.set_peer_id(owner);
    time.set_micros(time.micros() + combine.compute_micros());
    time.set_weight_bytes(time.weight_bytes() + combine.weight_bytes());
    const float* src = reinterpret_cast<const float*>(reply.payload.data());
    for (size_t i = 0; i < pairs.size(); ++i) std::copy_n(src + i * H, H, moe.contributions.data() + pairs[i] * H);
  }
  std::vector<float> m(mb.num_tokens * H);
  model::SumExpertContributions(mb.routing, moe.contributions.data(), mb.num_tokens, H, m.data());
  model::CombineMoe(c, c.postnorm ? mb.x.data() : mb.residual.data(), m.data(), mb.num_tokens, mb.x.data());
  return absl::OkStatus();
}

absl::Status StageExecutor::RunTail(MicroBatch& mb) {
  const model::ModelConfig& c = shard_->config();
  const int64_t V = c.vocab_size;
  if (!shard_->tail) return absl::FailedPreconditionError("routed the tail but holds no lm_head");
  // The rows whose logits are needed: each sampling sequence's last row, and every row of a
  // sequence that asked for its logits.
  std::vector<int64_t> rows;
  std::vector<const v1::StepSequence*> sampled;
  std::vector<int64_t> sample_row;  // index into `rows` of each sampled sequence's last row
  v1::TokensHeader reply;
  int64_t row = 0;
  for (const auto& s : mb.header.sequences()) {
    const int64_t first = row;
    row += s.num_tokens();
    if (s.return_logits()) {
      for (int64_t r = first; r < row; ++r) rows.push_back(r);
      v1::LogitsRows* entry = reply.add_logits();
      entry->set_sequence_id(s.sequence_id());
      entry->set_num_rows(s.num_tokens());
    } else if (s.sample()) {
      rows.push_back(row - 1);
    }
    if (!s.sample()) continue;
    sampled.push_back(&s);
    sample_row.push_back(static_cast<int64_t>(rows.size()) - 1);
  }
  std::vector<float> logits(rows.size() * V);
  if (!rows.empty()) {
    MMX_RETURN_IF_ERROR(shard_->compute->Logits(mb.x.data(), rows, logits.data()));
    mb.weight_bytes += model::WeightBytes(shard_->tail->lm_head);
  }
  // The returned logits are the model's; the mask below shapes only what is sampled.
  std::vector<float> returned;
  for (size_t i = 0, r = 0; i < static_cast<size_t>(mb.header.sequences_size()); ++i) {
    const v1::StepSequence& s = mb.header.sequences(static_cast<int>(i));
    if (s.return_logits()) {
      returned.insert(returned.end(), logits.begin() + r * V, logits.begin() + (r + s.num_tokens()) * V);
      r += s.num_tokens();
    } else if (s.sample()) {
      ++r;
    }
  }
  for (size_t i = 0; i < sampled.size(); ++i) {
    const v1::StepSequence& s = *sampled[i];
    float* row_logits = logits.data() + sample_row[i] * V;
    MaskUnsampleable(row_logits, V);
    auto& sampler = samplers_[s.sequence_id()];
    if (!sampler || s.start_position() == 0) sampler = std::make_unique<model::Sampler>(ToSampling(s));
    v1::SampledToken* token = reply.add_tokens();
    token->set_sequence_id(s.sequence_id());
    token->set_token_id(sampler->Sample(row_logits, V));
    FillLogprobs(row_logits, V, s.logprobs(), token);
  }
  for (uint64_t id : mb.header.freed_sequences()) samplers_.erase(id);
  reply.set_step_id(mb.header.step_id());
  reply.set_micro_batch(mb.header.micro_batch());
  *reply.mutable_timings() = mb.header.timings();
  v1::WorkerTime* own = reply.add_timings();
  own->set_peer_id(self_);
  own->set_micros(MicrosSince(mb.arrived));
  own->set_weight_bytes(mb.weight_bytes);
  return transport_->Send(routes_.coordinator,
                          ReplyKey(MessageKind::kTokens, mb.header.step_id(), mb.header.micro_batch(), 0),
                          reply.SerializeAsString(), returned.data(), returned.size() * sizeof(float));
}

void StageExecutor::MaskUnsampleable(float* row, int64_t vocab) const {
  if (sampleable_ranges_.empty()) return;
  // Ids outside the ranges (padding rows the tokenizer has no text for) get -inf.
  int64_t next = 0;
  for (size_t i = 0; i + 1 < sampleable_ranges_.size(); i += 2) {
    const int64_t begin = std::clamp<int64_t>(sampleable_ranges_[i], 0, vocab);
    std::fill(row + std::min(next, begin), row + begin, -std::numeric_limits<float>::infinity());
    next = std::max(next, std::clamp<int64_t>(sampleable_ranges_[i + 1], 0, vocab));
  }
  std::fill(row + next, row + vocab, -std::numeric_limits<float>::infinity());
}

absl::Status HandleDispatch(const LoadedShard& shard, transport::Transport* transport,
                            const transport::Message& message) {
  const model::ModelConfig& c = shard.config();
  MMX_ASSIGN_OR_RETURN(v1::DispatchHeader d, CheckDispatch(message, shard.wire_limits()));
  v1::CombineHeader reply;
  reply.set_step_id(d.step_id());
  reply.set_micro_batch(d.micro_batch());
  reply.set_layer(d.layer());
  const uint64_t key = ReplyKey(MessageKind::kCombine, d.step_id(), d.micro_batch(), d.layer());
  for (int id : d.expert_ids()) {
    if (!shard.HoldsExpert(d.layer(), id)) {
      reply.set_error(absl::StrCat("worker ", shard.shard.name, " does not hold expert ", id, " of layer ", d.layer()));
      reply.set_error_code(static_cast<int>(absl::StatusCode::kFailedPrecondition));
      MMX_RETURN_IF_ERROR(transport->Send(message.from, key, reply.SerializeAsString(), nullptr, 0));
      return absl::FailedPreconditionError(reply.error());
    }
  }
  const int64_t n = d.expert_ids_size();
  const Clock::time_point started = Clock::now();
  std::vector<float> out(n * c.hidden_size);
  std::vector<int> ids(d.expert_ids().begin(), d.expert_ids().end());
  std::vector<float> weights(d.weights().begin(), d.weights().end());
  absl::StatusOr<int64_t> read = shard.compute->ExpertPairs(
      d.layer(), reinterpret_cast<const float*>(message.payload.data()), ids.data(), weights.data(), n, out.data());
  if (!read.ok()) {
    reply.set_error(absl::StrCat("worker ", shard.shard.name, ": ", read.status().message()));
    reply.set_error_code(static_cast<int>(read.status().code()));
    MMX_RETURN_IF_ERROR(transport->Send(message.from, key, reply.SerializeAsString(), nullptr, 0));
    return read.status();
  }
  reply.set_num_rows(static_cast<int32_t>(n));
  reply.set_compute_micros(MicrosSince(started));
  reply.set_weight_bytes(static_cast<uint64_t>(*read));
  return transport->Send(message.from, key, reply.SerializeAsString(), out.data(), out.size() * sizeof(float));
}

}  // namespace mmx::worker
