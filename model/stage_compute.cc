#include "model/stage_compute.h"

#include "base/status_macros.h"
#include "model/cpu_layer_ops.h"
#include "model/layer_recipe.h"

namespace mmx::model {
namespace {

class CpuStageCompute final : public StageCompute {
 public:
  CpuStageCompute(const WeightsView& weights, RankCollective* ranks) : w_(weights), ranks_(ranks) {}

  std::string device_name() const override { return "cpu"; }

  absl::StatusOr<std::unique_ptr<SequenceState>> NewSequence(int first_layer, int end_layer, DType kv_dtype) override {
    return std::make_unique<SequenceState>(*w_.config, first_layer, end_layer, kv_dtype);
  }
  absl::Status Embed(const int32_t* ids, int64_t n, float* x) override {
    if (w_.embedding == nullptr) return absl::FailedPreconditionError("received tokens but holds no embedding");
    return EmbedTokens(*w_.embedding, ids, n, x);
  }
  absl::Status AttentionBlock(int layer, const BatchLayout& batch, float* x, std::vector<float>* residual,
                              Routing* routing) override {
    MMX_RETURN_IF_ERROR(CheckLayer(layer));
    // The recipe's attention block, with this rank's collective when the heads are split (a
    // collective can fail: another rank's failure aborts it).
    const ModelConfig& c = *w_.config;
    CpuLayerOps ops;
    if (c.postnorm) {
      residual->clear();
    } else {
      residual->resize(batch.num_tokens * c.hidden_size);
    }
    return recipe::AttentionBlock(ops, c, (*w_.attention)[layer - w_.first_layer], batch, x,
                                  c.postnorm ? nullptr : residual->data(), routing, ranks_);
  }
  absl::StatusOr<int64_t> ExpertPairs(int layer, const float* rows, const int* expert_ids, const float* weights,
                                      int64_t n, float* out) override {
    if (w_.experts == nullptr || layer < 0 || layer >= static_cast<int>(w_.experts->size())) {
      return absl::FailedPreconditionError("holds no experts of this layer");
    }
    return RunExpertPairs(*w_.config, (*w_.experts)[layer], rows, expert_ids, weights, n, out);
  }
  absl::Status Logits(const float* x, const std::vector<int64_t>& rows, float* logits) override {
    if (w_.tail == nullptr) return absl::FailedPreconditionError("routed the tail but holds no lm_head");
    return ComputeLogits(*w_.config, *w_.tail, x, rows, logits);
  }
  absl::Status FinalNorm(const float* x, const std::vector<int64_t>& rows, float* h) override {
    if (w_.tail == nullptr) return absl::FailedPreconditionError("routed the tail but holds no lm_head");
    CpuLayerOps ops;
    return recipe::FinalNorm(ops, *w_.config, *w_.tail, x, rows, h);
  }

 private:
  absl::Status CheckLayer(int layer) const {
    if (w_.attention == nullptr || layer < w_.first_layer ||
        layer >= w_.first_layer + static_cast<int>(w_.attention->size())) {
      return absl::FailedPreconditionError("does not hold this attention layer");
    }
    return absl::OkStatus();
  }

  WeightsView w_;
  RankCollective* ranks_;
};

}  // namespace

std::unique_ptr<StageCompute> MakeCpuStageCompute(const WeightsView& weights, RankCollective* ranks) {
  return std::make_unique<CpuStageCompute>(weights, ranks);
}

}  // namespace mmx::model
