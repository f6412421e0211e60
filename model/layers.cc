#include "model/layers.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/bf16.h"
#include "base/status_macros.h"
#include "model/cpu_layer_ops.h"
#include "model/layer_recipe.h"
#include "model/scratch.h"

namespace mmx::model {
void BatchLayout::Add(int64_t num_new_tokens, int64_t start_position, SequenceState* state) {
  sequences.push_back(SequenceSlice{num_tokens, num_new_tokens, start_position, state});
  for (int64_t i = 0; i < num_new_tokens; ++i) positions.push_back(start_position + i);
  num_tokens += num_new_tokens;
}

absl::StatusOr<int64_t> RunExpertPairs(const ModelConfig& c, const MoeWeights& experts, const float* rows,
                                       const int* expert_ids, const float* weights, int64_t n, float* out) {
  const int E = static_cast<int>(experts.experts.size());
  for (int64_t i = 0; i < n; ++i) {
    if (expert_ids[i] < 0 || expert_ids[i] >= E || !experts.experts[expert_ids[i]].loaded()) {
      return absl::FailedPreconditionError(
          absl::StrCat("expert ", expert_ids[i], " of layer ", experts.layer, " is not held here"));
    }
  }
  CpuLayerOps ops;
  return recipe::ExpertPairs(ops, c, experts, rows, expert_ids, weights, n, out);
}

void SumExpertContributions(const Routing& routing, const float* contributions, int64_t num_tokens,
                            int64_t hidden, float* m) {
  const int K = routing.k;
  std::vector<int> order(K);
  for (int64_t t = 0; t < num_tokens; ++t) {
    // Ascending expert id, as the reference accumulates (MODEL.md §5).
    for (int j = 0; j < K; ++j) order[j] = j;
    const int* ids = routing.expert_ids.data() + t * K;
    std::sort(order.begin(), order.end(), [&](int a, int b) { return ids[a] < ids[b]; });
    float* dst = m + t * hidden;
    std::copy_n(contributions + (t * K + order[0]) * hidden, hidden, dst);
    for (int j = 1; j < K; ++j) {
      const float* src = contributions + (t * K + order[j]) * hidden;
      for (int64_t h = 0; h < hidden; ++h) dst[h] += src[h];
    }
  }
}

void CombineMoe(const ModelConfig& c, const float* residual, const float* m, int64_t num_tokens,
                float* x) {
  const float alpha = static_cast<float>(c.mlp_alpha), beta = static_cast<float>(c.mlp_beta);
  const int64_t n = num_tokens * c.hidden_size;
  for (int64_t i = 0; i < n; ++i) x[i] = alpha * residual[i] + beta * m[i];
}

absl::Status EmbedTokens(const kernels::WeightView& embed, const int32_t* token_ids, int64_t num_tokens, float* x) {
  const int64_t H = embed.cols;
  for (int64_t t = 0; t < num_tokens; ++t) {
    if (token_ids[t] < 0 || token_ids[t] >= embed.rows) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", token_ids[t], " is outside the vocabulary [0, ", embed.rows, ")"));
    }
  }
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t id = token_ids[t];
    float* dst = x + t * H;
    switch (embed.dtype) {
      case DType::kBF16: {
        const uint16_t* src = static_cast<const uint16_t*>(embed.data) + id * H;
        for (int64_t h = 0; h < H; ++h) dst[h] = Bf16ToFloat(src[h]);
        break;
      }
      case DType::kF16: {
        const uint16_t* src = static_cast<const uint16_t*>(embed.data) + id * H;
        for (int64_t h = 0; h < H; ++h) dst[h] = F16ToFloat(src[h]);
        break;
      }
      case DType::kF32:
        std::copy_n(static_cast<const float*>(embed.data) + id * H, H, dst);
        break;
      case DType::kI8: {
        const int8_t* src = static_cast<const int8_t*>(embed.data) + id * H;
        for (int64_t h = 0; h < H; ++h) dst[h] = embed.scales[id] * static_cast<float>(src[h]);
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ComputeLogits(const ModelConfig& c, const TailWeights& tail, const float* x,
                           const std::vector<int64_t>& rows, float* logits) {
  CpuLayerOps ops;
  return recipe::Logits(ops, c, tail, x, rows, logits);
}

}  // namespace mmx::model
