#include "worker/decoder_layer.h"

#include <algorithm>
#include <map>
#include <utility>

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

namespace {

// A row of a part whose holder was lost: which part, which row of it.
struct LostRow {
  size_t part;
  int64_t row;
};

// Runs `lost` rows again on live holders of their experts and writes their results where the
// lost holder's would have gone. Every other part was collected already, so a holder's reply to
// this second dispatch (same step, micro-batch and layer) is the only one left to match.
absl::Status Redispatch(model::StageCompute& compute, int layer, int64_t H, uint32_t self, ExpertPeers& peers,
                        std::vector<LostRow> lost, LayerState& state) {
  // A holder that fails in its turn is routed around again; each round loses at least one.
  for (int round = 0; !lost.empty(); ++round) {
    if (round == 4) return absl::UnavailableError(absl::StrCat("expert hosts of layer ", layer, " kept failing"));
    std::map<uint32_t, model::MoeExchange::Part> parts;
    std::map<uint32_t, std::vector<LostRow>> origin;
    for (const LostRow& r : lost) {
      const model::MoeExchange::Part& from = state.moe.parts()[r.part];
      const int expert = from.expert_ids[r.row];
      MMX_ASSIGN_OR_RETURN(const uint32_t holder, peers.Replacement(layer, expert));
      model::MoeExchange::Part& to = parts[holder];
      to.holder = holder;
      to.pairs.push_back(from.pairs[r.row]);
      to.rows.insert(to.rows.end(), from.rows.begin() + r.row * H, from.rows.begin() + (r.row + 1) * H);
      to.expert_ids.push_back(expert);
      to.weights.push_back(from.weights[r.row]);
      origin[holder].push_back(r);
    }
    std::vector<const model::MoeExchange::Part*> remote;
    for (const auto& [holder, part] : parts) {
      if (holder != self) remote.push_back(&part);
    }
    if (!remote.empty()) MMX_RETURN_IF_ERROR(peers.Send(layer, remote));
    lost.clear();
    for (const auto& [holder, part] : parts) {
      transport::PooledFloats results;
      absl::Status st;
      if (holder == self) {
        results.resize(part.rows.size());
        absl::StatusOr<int64_t> bytes = compute.ExpertPairs(layer, part.rows.data(), part.expert_ids.data(),
                                                             part.weights.data(), part.num_rows(), results.data());
        st = bytes.status();
        if (bytes.ok()) state.expert_bytes += *bytes;
      } else {
        absl::StatusOr<transport::PooledFloats> collected = peers.Collect(layer, part);
        st = collected.status();
        if (collected.ok()) results = std::move(*collected);
      }
      if (absl::IsUnavailable(st)) {
        lost.insert(lost.end(), origin[holder].begin(), origin[holder].end());
        continue;
      }
      MMX_RETURN_IF_ERROR(st);
      for (size_t k = 0; k < origin[holder].size(); ++k) {
        const LostRow& r = origin[holder][k];
        std::copy(results.begin() + k * H, results.begin() + (k + 1) * H, state.moe.ResultsBuffer(r.part) + r.row * H);
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status EndLayer(model::StageCompute& compute, const model::ModelConfig& config, int layer, uint32_t self,
                      ExpertPeers* peers, LayerState& state) {
  std::vector<LostRow> lost;
  for (size_t i = 0; i < state.moe.parts().size(); ++i) {
    const model::MoeExchange::Part& part = state.moe.parts()[i];
    if (part.holder == self) continue;
    absl::StatusOr<transport::PooledFloats> results = peers->Collect(layer, part);
    if (absl::IsUnavailable(results.status())) {
      for (int64_t r = 0; r < part.num_rows(); ++r) lost.push_back({i, r});
      continue;
    }
    MMX_RETURN_IF_ERROR(results.status());
    state.moe.Receive(i, std::move(*results));
  }
  if (!lost.empty()) MMX_RETURN_IF_ERROR(Redispatch(compute, layer, config.hidden_size, self, *peers, std::move(lost), state));
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
