// The math of one MiniMax-Text-01 decoder layer, written once (the operations themselves in
// model/layer_recipe.h, over a compute backend) and placed by the workers wherever the shard
// config puts each piece: a single process is the same workers with every role local.
//
// Shape legend (used in every comment under model/):
//   T tokens in the batch (packed across sequences, no padding), H hidden (6144),
//   N heads (64), Nkv KV heads (8), D head dim (128), E experts (32), K experts per token (2),
//   F expert hidden (9216), L layers (80), V vocab (200064).
//
// A decoder layer is split where the distributed engine splits it:
//   attention block (recipe::AttentionBlock, on the stage that owns the layer):
//                           x -> u = norm_in(x); a = Attn(u); y = a_attn*u + b_attn*a;
//                           w = norm_post(y); routing = top-K(router(w))
//   RunExpertPairs (per expert, on whichever host holds it): E_e(w) = W2 (silu(W1 w) * W3 w)
//   SumExpertContributions + CombineMoe (back on the stage):
//                           m = sum over chosen experts in ascending id of r_e * E_e(w);
//                           x' = a_mlp*w + b_mlp*m
// worker/decoder_layer.h assembles them, with the dispatch between (model/moe_exchange.h).
// Numerics: fp32 activations, weights in the checkpoint dtype read in place, fp32 lightning
// state and KV cache. This is the golden set's fp32 reference mode (MODEL.md §2, golden README).
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/sequence_state.h"
#include "model/weights.h"

namespace mmx::model {

// Where each sequence's rows sit in a packed batch. Rows [row_begin, row_begin + num_tokens) of
// every [T, ...] activation belong to `state`, at absolute positions start_position + i.
struct SequenceSlice {
  int64_t row_begin = 0;
  int64_t num_tokens = 0;
  int64_t start_position = 0;
  SequenceState* state = nullptr;
};

struct BatchLayout {
  std::vector<SequenceSlice> sequences;
  int64_t num_tokens = 0;          // T
  std::vector<int64_t> positions;  // [T] absolute positions, filled by Finalize()

  // Appends a sequence's rows after the ones already added.
  void Add(int64_t num_new_tokens, int64_t start_position, SequenceState* state);
};

// Top-K routing of T tokens: expert ids (descending probability) and renormalised weights.
struct Routing {
  int k = 0;
  std::vector<int> expert_ids;  // [T, K]
  std::vector<float> weights;   // [T, K]
  // With keep_logits, the router's logits before the softmax, [T, E] (tests, diagnostics).
  bool keep_logits = false;
  std::vector<float> logits;
};

// Runs n (token, expert) pairs on the experts this process holds: out [n, H] row i =
// weights[i] * E_{expert_ids[i]}(rows[i]), rows [n, H]. Every named expert must be loaded here.
// Pairs of one expert run as one batched GEMM, so each expert's weights are read once per call.
// An expert host runs this on the rows a stage dispatched to it. Returns expert bytes read.
// FailedPrecondition if an expert id is not held here (or out of range).
absl::StatusOr<int64_t> RunExpertPairs(const ModelConfig& config, const MoeWeights& experts, const float* rows,
                                       const int* expert_ids, const float* weights, int64_t n, float* out);

// m [T, H]: each token's K pair contributions summed in ascending expert id (the reference
// order, MODEL.md §5). contributions [T*K, H]: row t*K + j belongs to routing pair (t, j),
// wherever it was computed.
void SumExpertContributions(const Routing& routing, const float* contributions, int64_t num_tokens,
                            int64_t hidden, float* m);

// x [T, H] = a_mlp * residual + b_mlp * m, where residual is w (postnorm) or y.
void CombineMoe(const ModelConfig& config, const float* residual, const float* m,
                int64_t num_tokens, float* x);

// Embedding lookup: x [T, H] = embed[token_ids].
// InvalidArgument for an id outside [0, V).
absl::Status EmbedTokens(const kernels::WeightView& embed, const int32_t* token_ids, int64_t num_tokens, float* x);

// Final norm and lm_head for the given rows of x [T, H]: logits [rows.size(), V].
absl::Status ComputeLogits(const ModelConfig& config, const TailWeights& tail, const float* x,
                           const std::vector<int64_t>& rows, float* logits);

}  // namespace mmx::model
