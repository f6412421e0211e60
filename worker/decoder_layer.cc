#include "worker/decoder_layer.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::worker {

absl::Status BeginLayer(model::StageCompute& compute, int layer, const model::BatchLayout& batch, uint32_t self,
                        const ChooseHolders& choose, ExpertPeers* peers, LayerState& state) {
  const int64_t T = batch.num_tokens;
  const int64_t H = static_cast<int64_t>(state.x.size()) / std::max<int64_t>(T, 1);
  MMX_RETURN_IF_ERROR(compute.AttentionBlock(layer, batch, state.x.data(), &state.residual, &state.routing));
  state.moe.Dispatch(state.routing, state.x.data(), T, H, choose(layer, state.routing));
  // Remote parts first, so their holders work while this worker computes its own.
  std::vector<const model::MoeExchange::Part*> remote;
  for (const model::MoeExchange::Part& part : state.moe.parts()) {
    if (part.holder != self) remote.push_back(&part);
  }
  if (!remote.empty()) {
    if (peers == nullptr) return absl::InternalError("experts routed to other workers, but there are none");
    MMX_RETURN_IF_ERROR(peers->Send(layer, remote));
  }
  for (size_t i = 0; i < state.moe.parts().size(); ++i) {
    const model::MoeExchange::Part& part = state.moe.parts()[i];
    if (part.holder != self) continue;
    float* out = state.moe.ResultsBuffer(i);
    MMX_ASSIGN_OR_RETURN(const int64_t bytes, compute.ExpertPairs(layer, part.rows.data(), part.expert_ids.data(),
                                                                  part.weights.data(), part.num_rows(), out));
    state.expert_bytes += bytes;
  }
  return absl::OkStatus();
}

absl::Status EndLayer(const model::ModelConfig& config, int layer, uint32_t self, ExpertPeers* peers,
                      LayerState& state) {
  for (size_t i = 0; i < state.moe.parts().size(); ++i) {
    const model::MoeExchange::Part& part = state.moe.parts()[i];
    if (part.holder == self) continue;
    MMX_RETURN_IF_ERROR(peers->Collect(layer, part, state.moe.ResultsBuffer(i)));
  }
  const int64_t H = config.hidden_size;
  const int64_t T = static_cast<int64_t>(state.x.size()) / H;
  state.moe_sum.resize(T * H);
  state.moe.Combine(state.moe_sum.data());
  model::CombineMoe(config, config.postnorm ? state.x.data() : state.residual.data(), state.moe_sum.data(), T,
                    state.x.data());
  return absl::OkStatus();
}

ChooseHolders AllExpertsLocal(uint32_t self) {
  return [self](int, const model::Routing& routing) { return std::vector<uint32_t>(routing.expert_ids.size(), self); };
}

}  // namespace mmx::worker
