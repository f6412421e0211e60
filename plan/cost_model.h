// CostModel: what a layout costs on a cluster, in bytes of memory per worker and in seconds per
// decode step, from the spec-sheet figures of each worker. docs/capacity-planning.md derives every
// formula and lists what the model does not see; the short version:
//
//   memory   = weights (by role and dtype) + state at the serving target (softmax KV bf16 for
//              max_context x max_sequences, lightning fp32 per sequence) + workspace, against
//              memory_gib minus headroom.
//   one step = every layer in order: attention on its stage, then the slowest expert host of
//              that layer (dispatch, work, combine), plus the hops between stages, the
//              embedding and the lm_head. A sequence has one token in flight, so the step is
//              the critical path, not the busiest worker.
//   groups   = with G attention groups each group holds state for, and steps, max_sequences / G
//              sequences; the expert hosts work for every group's steps.
//   a piece of work on one worker takes max(flops / compute, bytes / bandwidth); a message
//              takes bytes / the slower NIC + both NICs' latency. Rows travel as fp32, as the
//              runtime sends them.
//
// Pure functions of (ModelSizes, ClusterSpec, Layout); thread-compatible.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "plan/cluster_spec.h"
#include "plan/layout.h"
#include "plan/model_sizes.h"

namespace mmx::plan {

// Fractions of the spec-sheet peaks that real kernels and links reach. Spec sheets give peaks;
// decode GEMVs reach ~80% of memory bandwidth, small-batch GEMMs ~half of dense TFLOP/s.
inline constexpr double kMemoryEfficiency = 0.8;
inline constexpr double kComputeEfficiency = 0.5;
inline constexpr double kNetworkEfficiency = 0.9;
// Memory kept free on every worker: a fraction for fragmentation plus a fixed reserve for the
// process itself (CUDA context and cuBLAS workspace, or the OS and the worker's own heap).
inline constexpr double kHeadroomFraction = 0.05;
inline constexpr int64_t kCudaReserveBytes = int64_t{1} << 30;
inline constexpr int64_t kCpuReserveBytes = int64_t{2} << 30;
// Prompt tokens per sequence per step: `mmx-coord serve --prefill-chunk`'s default.
inline constexpr int kPrefillChunk = 256;
inline constexpr double kGiB = 1024.0 * 1024.0 * 1024.0;

struct WorkerMemory {
  int64_t attention = 0;        // attention, routers and norms of the owned layers
  int64_t experts = 0;          // every expert copy held
  int64_t embedding_tail = 0;   // embed_tokens; final norm + lm_head
  int64_t kv_cache = 0;         // softmax KV, max_context x max_sequences
  int64_t lightning_state = 0;  // fp32 state x max_sequences
  int64_t workspace = 0;        // activations of the largest step, logits
  int64_t usable = 0;           // memory_gib minus headroom
  int64_t capacity = 0;         // memory_gib

  int64_t weights() const { return attention + experts + embedding_tail; }
  int64_t state() const { return kv_cache + lightning_state; }
  int64_t total() const { return weights() + state() + workspace; }
  bool fits() const { return total() <= usable; }
};

// One worker's share of a decode step. busy = sum over its pieces of max(compute, memory),
// plus the time its NIC spends sending and receiving.
struct WorkerTime {
  double compute_s = 0;
  double memory_s = 0;
  double network_s = 0;
  double busy_s = 0;
};

// Where the critical path of one step goes, by role and by resource (each sums to the total).
struct StepBreakdown {
  double attention_s = 0;  // attention stages, layer by layer
  double experts_s = 0;    // the slowest expert host of each layer, its own work
  double network_s = 0;    // dispatch/combine transfers, stage hops, latencies
  double head_tail_s = 0;  // embedding, final norm, lm_head
  double compute_bound_s = 0;  // pieces of work limited by TFLOP/s
  double memory_bound_s = 0;   // pieces of work limited by memory bandwidth
  std::vector<double> by_worker;  // the path's seconds spent on each worker (transfers: the sender)
  double total() const { return attention_s + experts_s + network_s + head_tail_s; }
};

// Several steps in flight: each attention group's sequences split into `steps` waves, each with
// its own step out (coordinator/scheduler.h). A wave's next step leaves when its tokens are back,
// and every worker works for each wave in turn (an expert host for every group's), so each
// sequence waits max(a wave's step, steps x the busiest worker's busy time per round of one wave
// step in each group) per token.
struct InFlight {
  int steps = 1;
  int64_t sequences_per_wave = 0;
  double step_s = 0;          // one wave's step, its critical path (the slowest group's)
  double busiest_s = 0;       // the busiest worker's busy time per round (a wave step per group)
  double token_s = 0;         // time per output token
  double tokens_per_s = 0;    // max_sequences / token_s
  bool busiest_bound() const { return steps * busiest_s >= step_s; }
};

struct Prediction {
  std::vector<WorkerMemory> memory;      // per cluster worker
  std::vector<WorkerTime> decode_time;   // per cluster worker: one step of every group
  std::vector<int64_t> active_experts;   // per worker: pairs the runtime routes to it
  StepBreakdown decode;                  // a group's sequences at max_context (group 0's stages)
  double step_s = 0;
  double tokens_per_s = 0;               // max_sequences / served.token_s
  double ceiling_tokens_per_s = 0;       // max_sequences / the busiest worker's busy time
  int busiest_worker = -1;               // the largest busy time (the pipelined throughput limit)
  int bottleneck_worker = -1;            // the largest share of the step's critical path
  std::string bottleneck_resource;       // the path's largest part: "compute" | "memory" | "network"
  double ttft_1k_s = 0;                  // a lone 1,024-token prompt, chunked prefill
  double ttft_32k_s = 0;                 // a lone 32,768-token prompt
  std::optional<double> tokens_per_dollar;
  std::vector<int> over_capacity;        // workers whose total exceeds usable
  // Steps in flight: each count considered (1 .. kMaxStepsInFlight, at most one wave per
  // sequence) and the one served (the spec's, or the planner's choice: the most tokens/s, a
  // larger count only when it gains over 5%). tokens_per_s and tokens_per_dollar are the served
  // count's; step_s and `decode` are one step of all max_sequences (one in flight).
  std::vector<InFlight> in_flight;
  InFlight served;

  bool fits() const { return over_capacity.empty(); }
};

class CostModel {
 public:
  CostModel(ModelSizes sizes, ClusterSpec cluster);

  const ModelSizes& sizes() const { return sizes_; }
  const ClusterSpec& cluster() const { return cluster_; }
  bool int8() const { return cluster_.serving.int8_experts(); }

  std::vector<WorkerMemory> Memory(const Layout& layout) const;
  // The decode step time alone (the planner's objective), of group 0.
  double DecodeStepSeconds(const Layout& layout) const;
  // The sequences each attention group holds state for: max_sequences over the groups, rounded up.
  int64_t GroupSequences(const Layout& layout) const;
  // max_sequences in `steps` waves per group.
  InFlight PredictInFlight(const Layout& layout, int steps) const;
  Prediction Predict(const Layout& layout) const;

  // Building blocks the planner sizes with. `sequences`: those the stage holds state for (0:
  // max_sequences, one group).
  int64_t UsableBytes(int worker) const;
  int64_t StageLayerMemory(int layer, int64_t sequences = 0) const;  // weights + state of one layer's attention
  int64_t StageWorkspaceBytes(int64_t sequences = 0) const;
  int64_t TailWorkspaceBytes(int64_t sequences = 0) const;
  // An expert host's workspace when it holds at most `max_per_layer` experts of a layer.
  int64_t HostWorkspaceBytes(int64_t max_per_layer) const;
  // Decode-step seconds of layer `layer`'s attention on `worker` (max of compute and memory).
  double AttentionLayerSeconds(int worker, int layer) const;
  // Decode-step seconds of the lm_head on `worker`.
  double TailSeconds(int worker) const;
  // Decode-step seconds one expert of one layer costs `worker`, its rows' transfers included.
  double ExpertSeconds(int worker) const;

 private:
  struct Shape {  // one step: `sequences` sequences, each adding `tokens` from `start`
    int64_t sequences = 1;
    int64_t tokens = 1;
    int64_t start = 0;
    int64_t sampled = 1;  // rows that reach the lm_head
  };
  struct Work {
    double compute_s = 0;
    double memory_s = 0;
    double seconds() const { return compute_s > memory_s ? compute_s : memory_s; }
  };

  Work AttentionWork(int worker, int layer, const Shape& shape) const;
  Work ExpertWork(int worker, int64_t experts, const Shape& shape) const;
  double Transfer(int from, int to, double bytes) const;
  // Bytes of one activation row on the network, in serving.wire_dtype (compute stays fp32).
  double WireRowBytes() const {
    return static_cast<double>(sizes_.hidden) * static_cast<double>(DTypeSize(cluster_.serving.wire_dtype));
  }
  // The critical path of one step of `group`; adds each worker's share to `times` when non-null.
  StepBreakdown Step(const Layout& layout, const std::vector<int>& owners, const Shape& shape,
                     std::vector<WorkerTime>* times, int group = 0) const;
  double PrefillSeconds(const Layout& layout, const std::vector<int>& owners, int64_t prompt) const;

  ModelSizes sizes_;
  ClusterSpec cluster_;
};

}  // namespace mmx::plan
