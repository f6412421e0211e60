#include "worker/stage_executor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "model/layers.h"
#include "worker/message_keys.h"
#include "worker/wire_check.h"

namespace mmx::worker {
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

StageExecutor::StageExecutor(const LoadedShard* shard, transport::Transport* transport,
                             transport::PeerId self, Routes routes, absl::Duration reply_timeout)
    : shard_(shard), transport_(transport), self_(self), routes_(std::move(routes)),
      reply_timeout_(reply_timeout) {}

void StageExecutor::Reset() {
  states_.clear();
  samplers_.clear();
}

absl::Status StageExecutor::HandleStep(const transport::Message& message) {
  absl::StatusOr<v1::StepHeader> header = CheckStep(message, shard_->config());
  if (!header.ok()) {
    // A header that does not parse cannot be answered by step id; the coordinator's timeout covers it.
    v1::StepHeader partial;
    if (partial.ParseFromString(message.header)) ReportError(partial, header.status());
    return header.status();
  }
  absl::Status status = Run(*header, message);
  if (!status.ok()) ReportError(*header, status);
  return status;
}

void StageExecutor::ReportError(const v1::StepHeader& header, const absl::Status& status) {
  v1::TokensHeader reply;
  reply.set_step_id(header.step_id());
  reply.set_micro_batch(header.micro_batch());
  reply.set_error(absl::StrCat("worker ", shard_->shard.name, ": ", status.message()));
  (void)transport_->Send(routes_.coordinator, ReplyKey(MessageKind::kTokens, header.step_id(), header.micro_batch(), 0),
                         reply.SerializeAsString(), nullptr, 0);
}

absl::Status StageExecutor::Run(const v1::StepHeader& header, const transport::Message& message) {
  const model::ModelConfig& c = shard_->config();
  const int64_t H = c.hidden_size;
  const int L = c.num_hidden_layers;
  for (uint64_t id : header.freed_sequences()) {
    states_.erase(id);
    samplers_.erase(id);
  }
  const int64_t T = StepTokens(header);
  std::vector<float> x;
  int layer = header.layer();
  if (layer == -1) {
    if (!shard_->embedding) return absl::FailedPreconditionError("received tokens but holds no embedding");
    x.resize(T * H);
    model::EmbedTokens(*shard_->embedding, reinterpret_cast<const int32_t*>(message.payload.data()), T, x.data());
    layer = 0;
  } else {
    x.resize(T * H);
    std::memcpy(x.data(), message.payload.data(), x.size() * sizeof(float));
  }

  if (layer < L && routes_.attention_owner[layer] == self_) {
    if (!shard_->attention || !shard_->attention->Contains(layer)) {
      return absl::FailedPreconditionError(absl::StrCat("routed layer ", layer, " but does not hold it"));
    }
    const plan::LayerRange range = *shard_->attention;
    model::BatchLayout batch;
    for (const auto& s : header.sequences()) {
      auto& state = states_[s.sequence_id()];
      if (s.start_position() == 0 && layer == range.begin) {
        state = std::make_unique<model::SequenceState>(c, range.begin, range.end);
      } else if (!state || state->length() != s.start_position()) {
        const int64_t have = state ? state->length() : -1;
        states_.erase(s.sequence_id());
        return absl::FailedPreconditionError(absl::StrCat(
            "sequence ", s.sequence_id(), " at position ", s.start_position(), " but this stage holds ",
            have < 0 ? std::string("no state for it") : absl::StrCat(have, " tokens of it"),
            " (was the worker restarted?)"));
      }
      batch.Add(s.num_tokens(), s.start_position(), state.get());
    }
    std::vector<float> residual, m(T * H);
    model::Routing routing;
    for (; layer < range.end; ++layer) {
      const model::AttentionBlockWeights& block = shard_->attention_blocks[layer - range.begin];
      model::AttentionBlockForward(c, block, batch, x.data(), &residual, &routing);
      MMX_RETURN_IF_ERROR(RunMoe(header, layer, T, routing, x.data(), m.data()));
      model::CombineMoe(c, c.postnorm ? x.data() : residual.data(), m.data(), T, x.data());
    }
  }
  return Forward(header, layer, x.data(), T);
}

absl::Status StageExecutor::Forward(v1::StepHeader header, int layer, const float* x, int64_t num_tokens) {
  const model::ModelConfig& c = shard_->config();
  if (layer == c.num_hidden_layers && routes_.tail == self_) return RunTail(header, x);
  const transport::PeerId next = layer == c.num_hidden_layers ? routes_.tail : routes_.attention_owner[layer];
  header.set_layer(layer);
  return transport_->Send(next, InboxKey(MessageKind::kStep), header.SerializeAsString(), x,
                          num_tokens * c.hidden_size * sizeof(float));
}

absl::Status StageExecutor::RunMoe(const v1::StepHeader& header, int layer, int64_t num_tokens,
                                   const model::Routing& routing, const float* w, float* m) {
  const model::ModelConfig& c = shard_->config();
  const int64_t H = c.hidden_size;
  const int K = routing.k;
  const int64_t P = num_tokens * K;
  std::vector<float> contributions(P * H);  // [T*K, H], row t*K + j = pair (t, j)

  // Pairs grouped by the peer that owns their expert (this worker included).
  std::map<transport::PeerId, std::vector<int64_t>> by_owner;
  for (int64_t p = 0; p < P; ++p) by_owner[routes_.ExpertOwner(layer, routing.expert_ids[p])].push_back(p);

  auto gather = [&](const std::vector<int64_t>& pairs, std::vector<float>& rows, std::vector<int>& ids,
                    std::vector<float>& weights) {
    rows.resize(pairs.size() * H);
    ids.resize(pairs.size());
    weights.resize(pairs.size());
    for (size_t i = 0; i < pairs.size(); ++i) {
      std::copy_n(w + (pairs[i] / K) * H, H, rows.data() + i * H);
      ids[i] = routing.expert_ids[pairs[i]];
      weights[i] = routing.weights[pairs[i]];
    }
  };
  // Send to every remote host first, then compute the local pairs while they work.
  std::vector<float> rows, weights;
  std::vector<int> ids;
  for (const auto& [owner, pairs] : by_owner) {
    if (owner == self_) continue;
    gather(pairs, rows, ids, weights);
    v1::DispatchHeader d;
    d.set_step_id(header.step_id());
    d.set_micro_batch(header.micro_batch());
    d.set_layer(layer);
    d.mutable_expert_ids()->Add(ids.begin(), ids.end());
    d.mutable_weights()->Add(weights.begin(), weights.end());
    MMX_RETURN_IF_ERROR(transport_->Send(owner, InboxKey(MessageKind::kDispatch), d.SerializeAsString(),
                                         rows.data(), rows.size() * sizeof(float)));
  }
  if (auto local = by_owner.find(self_); local != by_owner.end()) {
    gather(local->second, rows, ids, weights);
    std::vector<float> out(rows.size());
    model::RunExpertPairs(c, shard_->experts[layer], rows.data(), ids.data(), weights.data(),
                          static_cast<int64_t>(ids.size()), out.data());
    for (size_t i = 0; i < local->second.size(); ++i) {
      std::copy_n(out.data() + i * H, H, contributions.data() + local->second[i] * H);
    }
  }
  for (const auto& [owner, pairs] : by_owner) {
    if (owner == self_) continue;
    MMX_ASSIGN_OR_RETURN(transport::Message reply,
                         transport_->Receive(owner, ReplyKey(MessageKind::kCombine, header.step_id(),
                                                             header.micro_batch(), layer),
                                             reply_timeout_));
    MMX_RETURN_IF_ERROR(CheckCombine(reply, c, static_cast<int64_t>(pairs.size())).status());
    const float* src = reinterpret_cast<const float*>(reply.payload.data());
    for (size_t i = 0; i < pairs.size(); ++i) std::copy_n(src + i * H, H, contributions.data() + pairs[i] * H);
  }
  model::SumExpertContributions(routing, contributions.data(), num_tokens, H, m);
  return absl::OkStatus();
}

absl::Status StageExecutor::RunTail(const v1::StepHeader& header, const float* x) {
  const model::ModelConfig& c = shard_->config();
  if (!shard_->tail) return absl::FailedPreconditionError("routed the tail but holds no lm_head");
  std::vector<int64_t> rows;
  std::vector<const v1::StepSequence*> sampled;
  int64_t row = 0;
  for (const auto& s : header.sequences()) {
    row += s.num_tokens();
    if (!s.sample()) continue;
    rows.push_back(row - 1);
    sampled.push_back(&s);
  }
  std::vector<float> logits(rows.size() * c.vocab_size);
  if (!rows.empty()) model::ComputeLogits(c, *shard_->tail, x, rows, logits.data());

  v1::TokensHeader reply;
  reply.set_step_id(header.step_id());
  reply.set_micro_batch(header.micro_batch());
  for (size_t i = 0; i < sampled.size(); ++i) {
    const v1::StepSequence& s = *sampled[i];
    auto& sampler = samplers_[s.sequence_id()];
    if (!sampler || s.start_position() == 0) sampler = std::make_unique<model::Sampler>(ToSampling(s));
    const float* row_logits = logits.data() + i * c.vocab_size;
    v1::SampledToken* token = reply.add_tokens();
    token->set_sequence_id(s.sequence_id());
    token->set_token_id(sampler->Sample(row_logits, c.vocab_size));
    FillLogprobs(row_logits, c.vocab_size, s.logprobs(), token);
  }
  for (uint64_t id : header.freed_sequences()) samplers_.erase(id);
  return transport_->Send(routes_.coordinator,
                          ReplyKey(MessageKind::kTokens, header.step_id(), header.micro_batch(), 0),
                          reply.SerializeAsString(), nullptr, 0);
}

absl::Status HandleDispatch(const LoadedShard& shard, transport::Transport* transport,
                            const transport::Message& message) {
  const model::ModelConfig& c = shard.config();
  MMX_ASSIGN_OR_RETURN(v1::DispatchHeader d, CheckDispatch(message, c));
  v1::CombineHeader reply;
  reply.set_step_id(d.step_id());
  reply.set_micro_batch(d.micro_batch());
  reply.set_layer(d.layer());
  const uint64_t key = ReplyKey(MessageKind::kCombine, d.step_id(), d.micro_batch(), d.layer());
  for (int id : d.expert_ids()) {
    if (!shard.HoldsExpert(d.layer(), id)) {
      reply.set_error(absl::StrCat("worker ", shard.shard.name, " does not hold expert ", id, " of layer ", d.layer()));
      MMX_RETURN_IF_ERROR(transport->Send(message.from, key, reply.SerializeAsString(), nullptr, 0));
      return absl::InvalidArgumentError(reply.error());
    }
  }
  const int64_t n = d.expert_ids_size();
  std::vector<float> out(n * c.hidden_size);
  std::vector<int> ids(d.expert_ids().begin(), d.expert_ids().end());
  std::vector<float> weights(d.weights().begin(), d.weights().end());
  model::RunExpertPairs(c, shard.experts[d.layer()], reinterpret_cast<const float*>(message.payload.data()),
                        ids.data(), weights.data(), n, out.data());
  reply.set_num_rows(static_cast<int32_t>(n));
  return transport->Send(message.from, key, reply.SerializeAsString(), out.data(), out.size() * sizeof(float));
}

}  // namespace mmx::worker
