// One decoder layer of one micro-batch at a stage, in two halves so that a stage's micro-batches
// interleave (ping-pong) while its expert hosts work: BeginLayer runs the attention block (norm,
// attention with the sequences' state, router), dispatches the routed pairs (model/
// moe_exchange.h) to whoever runs each expert this time (remote parts out through `peers`, the
// part held here computed at once); EndLayer collects the remote results, sums each token's
// contributions in the reference order and applies the MoE residual. This is the one place a
// decoder layer is assembled: the stage executor runs it for each layer it owns, tests run it
// with every expert local (peers = null).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "model/layers.h"
#include "model/moe_exchange.h"
#include "model/stage_compute.h"
#include "transport/payload.h"

namespace mmx::worker {

// One micro-batch's activations through a layer.
struct LayerState {
  // [T, H]: the layer's input; the normed MoE input w; the output. Pooled (huge pages when
  // large): a stage sends it on as is (transport/payload.h).
  transport::PooledFloats x;
  std::vector<float> residual;  // [T, H]: y, when the model is not postnorm
  model::Routing routing;
  model::MoeExchange moe;
  std::vector<float> moe_sum;   // [T, H]: m, the summed expert contributions
  int64_t expert_bytes = 0;     // expert weight bytes this worker read for it
};

// The expert parts of a layer that other workers run.
class ExpertPeers {
 public:
  virtual ~ExpertPeers() = default;
  // Sends these parts, all at once (no holder waits for another's transfer).
  virtual absl::Status Send(int layer, const std::vector<const model::MoeExchange::Part*>& parts) = 0;
  // Waits for one part's results: rows [n, H] = weight * expert(row), in the part's order (the
  // received memory itself where the wire carries fp32). UNAVAILABLE when its holder is gone.
  virtual absl::StatusOr<transport::PooledFloats> Collect(int layer, const model::MoeExchange::Part& part) = 0;
  // A live holder of `expert` at `layer` (this worker's id if it holds one), for rows whose
  // holder was lost mid-layer; UNAVAILABLE if none is left.
  virtual absl::StatusOr<uint32_t> Replacement(int layer, int expert) = 0;
};

// The holder of each routed pair ([T*K]); `self` for the pairs this worker runs.
using ChooseHolders = std::function<std::vector<uint32_t>(int layer, const model::Routing& routing)>;

// Attention and dispatch of `layer` on state.x. Pairs whose holder is not `self` go to `peers`
// (which must then not be null).
absl::Status BeginLayer(model::StageCompute& compute, int layer, const model::BatchLayout& batch, uint32_t self,
                        const ChooseHolders& choose, ExpertPeers* peers, LayerState& state);

// The remote results, the sum and the MoE residual: state.x becomes the layer's output. Rows
// whose holder was lost meanwhile (its Collect UNAVAILABLE) are sent again to other holders of
// their experts (or run here), so a lost replica costs the layer a round trip, not the step.
absl::Status EndLayer(model::StageCompute& compute, const model::ModelConfig& config, int layer, uint32_t self,
                      ExpertPeers* peers, LayerState& state);

// A ChooseHolders that runs every expert here.
ChooseHolders AllExpertsLocal(uint32_t self);

}  // namespace mmx::worker
