// StageCompute: the model's layer functions (model/layers.h, model/layer_recipe.h) as one object
// per worker and device, on host pointers. A worker's stage executor and expert host call it; the CPU flavour
// runs model/layers.h in place, the CUDA flavour (model/cuda/cuda_stage_compute.h) holds its own
// copies of the weights and the sequence state in GPU memory, moves activations through pinned
// buffers, and runs the same recipe (model/layer_recipe.h) with GPU kernels.
//
// Activations cross this interface in host memory because that is where the data plane (UCX)
// delivers and takes them; routing stays on the host because dispatch is decided there.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/layers.h"
#include "model/sequence_state.h"
#include "model/weights.h"

namespace mmx::model {

// The weights a process holds, as a non-owning view (a worker's LoadedShard, a local engine).
// Pieces the process does not hold are null.
struct WeightsView {
  const ModelConfig* config = nullptr;
  const kernels::WeightView* embedding = nullptr;
  int first_layer = 0;                                            // of `attention`
  const std::vector<AttentionBlockWeights>* attention = nullptr;  // layers [first_layer, first_layer + size)
  const std::vector<MoeWeights>* experts = nullptr;               // [L]; only held experts loaded
  const TailWeights* tail = nullptr;
};

class StageCompute {
 public:
  virtual ~StageCompute() = default;

  // "cpu", or "cuda:0 (NVIDIA H100 80GB HBM3)".
  virtual std::string device_name() const = 0;
  // Bytes of weights this object placed in device memory (0 on the CPU: it reads the mmap).
  virtual int64_t device_weight_bytes() const { return 0; }

  // Zeroed state for a new sequence over layers [first_layer, end_layer), where this device
  // keeps it, its KV cache in `kv_dtype` (kBF16 or kF32). Fails (out of device memory) with a
  // status that says how much was asked.
  virtual absl::StatusOr<std::unique_ptr<SequenceState>> NewSequence(int first_layer, int end_layer,
                                                                     DType kv_dtype) = 0;

  // layers.h EmbedTokens: x [n, H] = embedding rows of ids (each < V, checked by the caller).
  virtual absl::Status Embed(const int32_t* ids, int64_t n, float* x) = 0;
  // The attention block of a held layer (recipe::AttentionBlock: x [T, H] becomes w, the normed
  // MoE input; `residual` receives y unless postnorm), on states from NewSequence.
  virtual absl::Status AttentionBlock(int layer, const BatchLayout& batch, float* x, std::vector<float>* residual,
                                      Routing* routing) = 0;
  // layers.h RunExpertPairs on held experts of `layer`; returns the expert bytes read.
  virtual absl::StatusOr<int64_t> ExpertPairs(int layer, const float* rows, const int* expert_ids,
                                              const float* weights, int64_t n, float* out) = 0;
  // layers.h ComputeLogits: logits [rows.size(), V] for the given rows of x [T, H].
  virtual absl::Status Logits(const float* x, const std::vector<int64_t>& rows, float* logits) = 0;
  // The final norm alone (the tail's hidden states, what lm_head reads): h [rows.size(), H].
  virtual absl::Status FinalNorm(const float* x, const std::vector<int64_t>& rows, float* h) = 0;
};

class RankCollective;

// Host memory and kernels/cpu, on the views' own memory (nothing copied). `ranks`: when these
// weights are one rank's slice of a tensor-parallel split, its collective (borrowed;
// parallel/ranked_stage_compute.h).
std::unique_ptr<StageCompute> MakeCpuStageCompute(const WeightsView& weights, RankCollective* ranks = nullptr);

// Called with (bytes done, bytes total) while weights are uploaded to a device.
using UploadProgressFn = std::function<void(int64_t, int64_t)>;

// What a worker tells the planner about its device: memory and measured bandwidth
// (parallel/stage_compute_factory.h QueryCudaDevice).
struct DeviceInfo {
  std::string name;            // "cuda:0 (NVIDIA H100 80GB HBM3)"
  int64_t total_bytes = 0;
  int64_t free_bytes = 0;
  double bandwidth_gbs = 0;    // device-to-device copy, read plus write bytes per second
};

}  // namespace mmx::model
