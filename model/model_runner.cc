#include "model/model_runner.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::model {

absl::StatusOr<std::unique_ptr<ModelRunner>> ModelRunner::Load(const std::string& dir,
                                                          const ModelLoadOptions& options) {
  std::unique_ptr<ModelRunner> runner(new ModelRunner());
  MMX_ASSIGN_OR_RETURN(runner->checkpoint_, Checkpoint::Open(dir));
  const Checkpoint& ckpt = *runner->checkpoint_;
  MMX_RETURN_IF_ERROR(ckpt.ValidateAgainstConfig());
  MMX_ASSIGN_OR_RETURN(runner->embedding_, LoadEmbedding(ckpt));
  const int L = ckpt.config().num_hidden_layers;
  for (int l = 0; l < L; ++l) {
    MMX_ASSIGN_OR_RETURN(AttentionBlockWeights a, LoadAttentionBlock(ckpt, l));
    runner->attention_.push_back(std::move(a));
    MMX_ASSIGN_OR_RETURN(MoeWeights m, LoadExperts(ckpt, l));
    if (options.expert_dtype == ExpertDType::kInt8) QuantizeExperts(&m, &runner->int8_experts_);
    runner->experts_.push_back(std::move(m));
  }
  MMX_ASSIGN_OR_RETURN(runner->tail_, LoadTail(ckpt));
  return runner;
}

absl::Status ModelRunner::StartSequence(int64_t sequence_id) {
  if (sequences_.count(sequence_id)) {
    return absl::AlreadyExistsError(absl::StrCat("sequence ", sequence_id, " is already live"));
  }
  sequences_[sequence_id] =
      std::make_unique<SequenceState>(config(), 0, config().num_hidden_layers);
  return absl::OkStatus();
}

void ModelRunner::EndSequence(int64_t sequence_id) { sequences_.erase(sequence_id); }

int64_t ModelRunner::SequenceLength(int64_t sequence_id) const {
  auto it = sequences_.find(sequence_id);
  return it == sequences_.end() ? 0 : it->second->length();
}

absl::StatusOr<StepOutput> ModelRunner::Step(const std::vector<StepInput>& inputs) {
  const ModelConfig& c = config();
  const int64_t H = c.hidden_size, V = c.vocab_size;
  BatchLayout batch;
  std::vector<int32_t> tokens;
  std::set<int64_t> seen;
  for (const StepInput& in : inputs) {
    auto it = sequences_.find(in.sequence_id);
    if (it == sequences_.end()) {
      return absl::InvalidArgumentError(absl::StrCat("unknown sequence ", in.sequence_id));
    }
    if (!seen.insert(in.sequence_id).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", in.sequence_id, " appears twice in one step"));
    }
    if (in.tokens.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("sequence ", in.sequence_id, ": no tokens to process"));
    }
    for (int32_t id : in.tokens) {
      if (id < 0 || id >= V) {
        return absl::InvalidArgumentError(absl::StrCat(
            "token id ", id, " is outside the vocabulary [0, ", V, ") of this model"));
      }
    }
    batch.Add(static_cast<int64_t>(in.tokens.size()), it->second->length(), it->second.get());
    tokens.insert(tokens.end(), in.tokens.begin(), in.tokens.end());
  }

  const int64_t T = batch.num_tokens;
  kernels::ScopedActivationPrecision precision(precision_);
  std::vector<float> x(T * H);  // [T, H], the residual stream between layers
  EmbedTokens(embedding_, tokens.data(), T, x.data());
  int64_t bytes_read = T * H * static_cast<int64_t>(DTypeSize(embedding_.dtype));
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    bytes_read += AttentionBlockBytes(attention_[l]);
    bytes_read += DecoderLayerForward(c, attention_[l], experts_[l], batch, x.data());
  }
  bytes_read += WeightBytes(tail_.lm_head);

  std::vector<int64_t> rows;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const SequenceSlice& s = batch.sequences[i];
    if (inputs[i].all_logits) {
      for (int64_t r = 0; r < s.num_tokens; ++r) rows.push_back(s.row_begin + r);
    } else {
      rows.push_back(s.row_begin + s.num_tokens - 1);
    }
  }
  std::vector<float> logits(rows.size() * V);
  ComputeLogits(c, tail_, x.data(), rows, logits.data());

  StepOutput out;
  out.weight_bytes_read = bytes_read;
  size_t row = 0;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const int64_t n = inputs[i].all_logits ? batch.sequences[i].num_tokens : 1;
    out.logits.emplace_back(logits.begin() + row * V, logits.begin() + (row + n) * V);
    row += n;
  }
  return out;
}

}  // namespace mmx::model
