#include "worker/tail.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "base/status_macros.h"
#include "model/token_selection.h"

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
  const float lse = model::LogSumExp(logits, vocab);
  out->set_logprob(logits[out->token_id()] - lse);
  if (n <= 0) return;
  for (int32_t id : model::TopKIds(logits, vocab, std::min<int64_t>(n, vocab))) {
    out->add_top_token_ids(id);
    out->add_top_logprobs(logits[id] - lse);
  }
}

}  // namespace

absl::StatusOr<v1::TokensHeader> Tail::Run(model::StageCompute& compute, const v1::StepHeader& header,
                                           const float* x, int64_t V, std::vector<float>* returned) {
  // The rows whose logits are needed: each sampling sequence's last row, and every row of a
  // sequence that asked for its logits or for its prompt's log-probabilities.
  std::vector<int64_t> rows;
  std::vector<const v1::StepSequence*> sampled;
  std::vector<int64_t> sample_row;  // index into `rows` of each sampled sequence's last row
  std::vector<int64_t> first_row;   // per sequence: index into `rows` of its first row (-1: none)
  v1::TokensHeader reply;
  int64_t row = 0;
  for (const auto& s : header.sequences()) {
    // The coordinator validated these; a tail still refuses what would make a sampler misbehave.
    if (s.sample()) {
      absl::Status valid = model::ValidateSamplingParams(ToSampling(s));
      if (!valid.ok()) return absl::InvalidArgumentError(absl::StrCat("sequence ", s.sequence_id(), ": ", valid.message()));
    }
    const int64_t first = row;
    row += s.num_tokens();
    first_row.push_back(-1);
    if (s.return_logits() || s.next_token_ids_size() > 0) {
      first_row.back() = static_cast<int64_t>(rows.size());
      for (int64_t r = first; r < row; ++r) rows.push_back(r);
    } else if (s.sample()) {
      rows.push_back(row - 1);
    }
    if (s.return_logits()) {
      v1::LogitsRows* entry = reply.add_logits();
      entry->set_sequence_id(s.sequence_id());
      entry->set_num_rows(s.num_tokens());
    }
    if (!s.sample()) continue;
    sampled.push_back(&s);
    sample_row.push_back(static_cast<int64_t>(rows.size()) - 1);
  }
  std::vector<float> logits(rows.size() * V);
  if (!rows.empty()) MMX_RETURN_IF_ERROR(compute.Logits(x, rows, logits.data()));
  // The returned logits and the prompt's scores come from the raw rows, before the mask below,
  // which shapes only what is sampled.
  returned->clear();
  for (int i = 0; i < header.sequences_size(); ++i) {
    const v1::StepSequence& s = header.sequences(i);
    if (first_row[i] < 0) continue;
    const float* seq_rows = logits.data() + first_row[i] * V;
    if (s.return_logits()) returned->insert(returned->end(), seq_rows, seq_rows + s.num_tokens() * V);
    if (s.next_token_ids_size() == 0) continue;
    v1::PromptRows* scored = reply.add_prompt();
    scored->set_sequence_id(s.sequence_id());
    for (int r = 0; r < s.next_token_ids_size(); ++r) {
      v1::SampledToken* t = scored->add_rows();
      t->set_token_id(s.next_token_ids(r));
      FillLogprobs(seq_rows + r * V, V, s.prompt_logprobs(), t);
    }
  }
  for (size_t i = 0; i < sampled.size(); ++i) {
    const v1::StepSequence& s = *sampled[i];
    float* row_logits = logits.data() + sample_row[i] * V;
    MaskUnsampleable(row_logits, V);
    v1::SampledToken* token = reply.add_tokens();
    token->set_sequence_id(s.sequence_id());
    // The token sampled here goes at the position after the step's last one.
    token->set_token_id(model::SampleToken(ToSampling(s), row_logits, V, s.start_position() + s.num_tokens()));
    FillLogprobs(row_logits, V, s.logprobs(), token);
  }
  reply.set_step_id(header.step_id());
  reply.set_micro_batch(header.micro_batch());
  return reply;
}

void Tail::MaskUnsampleable(float* row, int64_t vocab) const {
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

}  // namespace mmx::worker
