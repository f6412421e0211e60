// Runs the whole model through one StageCompute (model/stage_compute.h), the way a worker that
// holds every piece would: embed, then per layer the attention block, every routed pair on the
// experts, the host-side sum and combine, and the logits. Tests use it to hold each backend (the
// CPU one here, the CUDA one on a GPU machine) to the golden set through the interface the
// workers call.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "base/status_macros.h"
#include "model/checkpoint.h"
#include "model/config.h"
#include "model/layers.h"
#include "model/stage_compute.h"
#include "model/weights.h"

namespace mmx::testing {

// Every weight of a checkpoint as host views, for a StageCompute that holds the whole model.
struct WholeModelWeights {
  std::unique_ptr<model::Checkpoint> checkpoint;
  kernels::WeightView embedding;
  std::vector<model::AttentionBlockWeights> attention;
  std::vector<model::MoeWeights> experts;
  model::TailWeights tail;

  static absl::StatusOr<WholeModelWeights> Load(const std::string& dir) {
    WholeModelWeights w;
    MMX_ASSIGN_OR_RETURN(w.checkpoint, model::Checkpoint::Open(dir));
    const model::ModelConfig& c = w.checkpoint->config();
    MMX_ASSIGN_OR_RETURN(w.embedding, model::LoadEmbedding(*w.checkpoint));
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      MMX_ASSIGN_OR_RETURN(model::AttentionBlockWeights a, model::LoadAttentionBlock(*w.checkpoint, l));
      w.attention.push_back(std::move(a));
      MMX_ASSIGN_OR_RETURN(model::MoeWeights m, model::LoadExperts(*w.checkpoint, l));
      w.experts.push_back(std::move(m));
    }
    MMX_ASSIGN_OR_RETURN(w.tail, model::LoadTail(*w.checkpoint));
    return w;
  }
  model::WeightsView view() const {
    return model::WeightsView{&checkpoint->config(), &embedding, 0, &attention, &experts, &tail};
  }
};

class StageComputeModel {
 public:
  StageComputeModel(const model::ModelConfig& config, model::StageCompute* compute)
      : config_(config), compute_(compute) {}

  struct Input {
    uint64_t sequence_id = 0;
    std::vector<int32_t> tokens;
    bool all_logits = false;  // every position's logits, else only the last one's
  };

  // One step over several sequences packed into one batch (new ids start a sequence). Returns
  // each input's logits, [rows, V] row-major.
  absl::StatusOr<std::vector<std::vector<float>>> Step(const std::vector<Input>& inputs) {
    const model::ModelConfig& c = config_;
    const int64_t H = c.hidden_size, V = c.vocab_size;
    model::BatchLayout batch;
    std::vector<int32_t> ids;
    std::vector<int64_t> rows;
    for (const Input& in : inputs) {
      auto& state = states_[in.sequence_id];
      if (!state) {
        MMX_ASSIGN_OR_RETURN(state, compute_->NewSequence(0, c.num_hidden_layers));
      }
      const int64_t first_row = batch.num_tokens;
      batch.Add(static_cast<int64_t>(in.tokens.size()), state->length(), state.get());
      ids.insert(ids.end(), in.tokens.begin(), in.tokens.end());
      const int64_t n = static_cast<int64_t>(in.tokens.size());
      for (int64_t i = in.all_logits ? 0 : n - 1; i < n; ++i) rows.push_back(first_row + i);
    }
    const int64_t T = batch.num_tokens;
    std::vector<float> x(T * H), residual, m(T * H);
    MMX_RETURN_IF_ERROR(compute_->Embed(ids.data(), T, x.data()));
    model::Routing routing;
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      MMX_RETURN_IF_ERROR(compute_->AttentionBlock(l, batch, x.data(), &residual, &routing));
      const int K = routing.k;
      std::vector<float> pair_rows(T * K * H), contributions(T * K * H);
      for (int64_t t = 0; t < T; ++t) {
        for (int j = 0; j < K; ++j) std::copy_n(x.data() + t * H, H, pair_rows.data() + (t * K + j) * H);
      }
      MMX_RETURN_IF_ERROR(compute_->ExpertPairs(l, pair_rows.data(), routing.expert_ids.data(),
                                                routing.weights.data(), T * K, contributions.data())
                              .status());
      model::SumExpertContributions(routing, contributions.data(), T, H, m.data());
      model::CombineMoe(c, c.postnorm ? x.data() : residual.data(), m.data(), T, x.data());
    }
    std::vector<float> logits(rows.size() * V);
    MMX_RETURN_IF_ERROR(compute_->Logits(x.data(), rows, logits.data()));
    std::vector<std::vector<float>> out;
    size_t r = 0;
    for (const Input& in : inputs) {
      const size_t n = in.all_logits ? in.tokens.size() : 1;
      out.emplace_back(logits.begin() + r * V, logits.begin() + (r + n) * V);
      r += n;
    }
    return out;
  }

  void End(uint64_t sequence_id) { states_.erase(sequence_id); }

 private:
  model::ModelConfig config_;
  model::StageCompute* compute_;
  std::map<uint64_t, std::unique_ptr<model::SequenceState>> states_;
};

}  // namespace mmx::testing
