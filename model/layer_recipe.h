// The decoder layer's recipe, written once over a compute backend ("Ops"), so that the CPU and
// CUDA paths run the same sequence of operations on the same intermediate tensors: model/
// layers.cc instantiates it with CpuLayerOps (kernels/kernels.h on host memory), model/cuda/
// with CudaLayerOps (kernels/cuda launchers on device memory). What differs between backends is
// only where memory lives and which kernel computes each step; the order of the steps, which
// tensor feeds which, the residual scales and the bookkeeping of sequence state are here, and the
// CPU golden tests check them for both.
//
// An Ops type provides, on pointers into its own memory space (all return absl::Status):
//   float* Scratch(Slot, size_t n)              reusable buffer of n floats per slot
//   double* RowSums(int64_t T)                  reusable buffer of T doubles
//   Gemm(x, T, WeightView, y), GemmGroup(problems, count)
//   RmsNorm(x, T, n, gamma, eps, out), SiluInPlace(x, n), SiluMul(g, u, n, out),
//   SigmoidMulInPlace(gate, x, n), Axpby(alpha, a, beta, b, n, out), Copy(src, n, dst)
//   RowSumOfSquares(x, T, width, sums), NormalizeRows(x, T, width, sums, full_width, gamma, eps, out)
//   ApplyRope(x, T, heads, D, rotary_dim, const BatchLayout&, inv_freq)
//   Lightning(shape, const BatchLayout&, layer, qkv, o)     every sequence's rows; lengths untouched
//   AppendKv(SequenceState&, layer, k_rows, v_rows, n)       before the length is advanced
//   CausalAttention(shape, q, n, SequenceState&, layer, total_len, o)
//   RouterTopK(logits, T, E, K, Routing*)                   the routing lands in host memory
//   GatherRows(src, const std::vector<int64_t>& index, width, dst)     dst[r] = src[index[r]]
//   ScaleScatterRows(src, const std::vector<float>& scale, const std::vector<int64_t>& index,
//                    width, dst)                                         dst[index[r]] = scale[r]*src[r]
// The backends know nothing of ranks. When a worker's heads are split over ranks (its GPUs,
// parallel/rank_split.h), each rank runs this recipe with a config of its own heads and its
// slices of the weights, and the attention block is given the rank's RankCollective
// (model/rank_collective.h, implemented outside model/: threads, NCCL) for the two points where
// a rank's results are partial: the lightning output norm (one RMSNorm over all heads' features:
// the per-row sums of squares are summed over the ranks first) and the output projections (each
// rank projects its own heads: the products are summed). Without ranks (null) neither is partial.
// The weight structs are duck-typed: the recipe reads the fields of model/weights.h by name, and
// a backend's own struct (device pointers) provides the same names with .data() on the vectors.
#pragma once

#include <cmath>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "base/status_macros.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/layers.h"
#include "model/rank_collective.h"
#include "model/scratch.h"
#include "model/weights.h"

namespace mmx::model::recipe {

// The lightning output norm's eps: the module's constructor default, not rms_norm_eps (MODEL.md §3.6).
constexpr float kLightningNormEps = 1e-6f;

// The lightning output norm: one RMSNorm over all N*D features of each row, of which a rank
// holding some heads has a slice.
template <class Ops>
absl::Status HeadsRmsNorm(Ops& ops, RankCollective* ranks, const float* x, int64_t T, int64_t width,
                          const float* gamma, float eps, float* out) {
  if (ranks == nullptr || ranks->size() == 1) return ops.RmsNorm(x, T, width, gamma, eps, out);
  double* sums = ops.RowSums(T);
  MMX_RETURN_IF_ERROR(ops.RowSumOfSquares(x, T, width, sums));
  MMX_RETURN_IF_ERROR(ranks->AllReduceSum(sums, T));
  return ops.NormalizeRows(x, T, width, sums, width * ranks->size(), gamma, eps, out);
}

// An output projection of a rank's heads is its part of the sum over all heads.
inline absl::Status SumOverRanks(RankCollective* ranks, float* x, int64_t n) {
  if (ranks == nullptr || ranks->size() == 1 || n == 0) return absl::OkStatus();
  return ranks->AllReduceSum(x, n);
}

// Lightning attention on the normed input u [T, H]: a [T, H].
template <class Ops, class W>
absl::Status Lightning(Ops& ops, const ModelConfig& c, const W& w, const BatchLayout& batch, int layer,
                       RankCollective* ranks, const float* u, float* a) {
  const int64_t T = batch.num_tokens;
  const int64_t qw = c.q_width();  // N*D
  float* qkv = ops.Scratch(Slot::kQkv, T * 3 * qw);  // [T, N*3*D]
  MMX_RETURN_IF_ERROR(ops.Gemm(u, T, w.qkv, qkv));
  MMX_RETURN_IF_ERROR(ops.SiluInPlace(qkv, T * 3 * qw));

  float* o = ops.Scratch(Slot::kHeads, T * qw);  // [T, N*D], heads concatenated
  const kernels::LightningShape shape{c.num_attention_heads, c.head_dim, w.slopes.data(), c.lightning_block_size};
  MMX_RETURN_IF_ERROR(ops.Lightning(shape, batch, layer, qkv, o));
  for (const SequenceSlice& s : batch.sequences) s.state->layer(layer).length += s.num_tokens;
  // One RMSNorm over all N*D features, then the sigmoid gate from the same u.
  // (With heads split over ranks, the norm's sum of squares is summed across them first.)
  MMX_RETURN_IF_ERROR(HeadsRmsNorm(ops, ranks, o, T, qw, w.norm.data(), kLightningNormEps, o));
  float* gate = ops.Scratch(Slot::kGate, T * qw);
  MMX_RETURN_IF_ERROR(ops.Gemm(u, T, w.gate, gate));
  MMX_RETURN_IF_ERROR(ops.SigmoidMulInPlace(gate, o, T * qw));
  MMX_RETURN_IF_ERROR(ops.Gemm(o, T, w.out, a));
  return SumOverRanks(ranks, a, T * c.hidden_size);
}

// Softmax attention (GQA, partial rotate-half RoPE, KV cache) on u [T, H]: a [T, H].
template <class Ops, class W>
absl::Status Softmax(Ops& ops, const ModelConfig& c, const W& w, const BatchLayout& batch, int layer,
                     RankCollective* ranks, const float* u, float* a) {
  const int64_t T = batch.num_tokens;
  const int64_t qw = c.q_width(), kvw = c.kv_width();
  float* q = ops.Scratch(Slot::kQ, T * qw);
  float* k = ops.Scratch(Slot::kK, T * kvw);
  float* v = ops.Scratch(Slot::kV, T * kvw);
  MMX_RETURN_IF_ERROR(ops.Gemm(u, T, w.q, q));
  MMX_RETURN_IF_ERROR(ops.Gemm(u, T, w.k, k));
  MMX_RETURN_IF_ERROR(ops.Gemm(u, T, w.v, v));
  MMX_RETURN_IF_ERROR(ops.ApplyRope(q, T, c.num_attention_heads, c.head_dim, c.rotary_dim, batch, w.inv_freq.data()));
  MMX_RETURN_IF_ERROR(ops.ApplyRope(k, T, c.num_key_value_heads, c.head_dim, c.rotary_dim, batch, w.inv_freq.data()));

  float* o = ops.Scratch(Slot::kHeads, T * qw);
  const kernels::AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                                      1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  for (const SequenceSlice& s : batch.sequences) {
    LayerState& state = s.state->layer(layer);
    MMX_CHECK(state.length == s.start_position);  // the caller matched states to positions
    MMX_RETURN_IF_ERROR(ops.AppendKv(*s.state, layer, k + s.row_begin * kvw, v + s.row_begin * kvw, s.num_tokens));
    state.length += s.num_tokens;
    MMX_RETURN_IF_ERROR(
        ops.CausalAttention(shape, q + s.row_begin * qw, s.num_tokens, *s.state, layer, state.length, o + s.row_begin * qw));
  }
  MMX_RETURN_IF_ERROR(ops.Gemm(o, T, w.o, a));
  return SumOverRanks(ranks, a, T * c.hidden_size);
}

// The attention block (layers.h): x [T, H] becomes w; `residual` [T, H] receives y unless the
// model is postnorm (then it may be null: the residual is w itself). Routing in host memory.
// `ranks`: this rank's collective when the layer's heads are split over ranks, else null.
template <class Ops, class W>
absl::Status AttentionBlock(Ops& ops, const ModelConfig& c, const W& w, const BatchLayout& batch, float* x,
                            float* residual, Routing* routing, RankCollective* ranks = nullptr) {
  const int64_t T = batch.num_tokens, H = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const bool softmax = w.kind == AttentionKind::kSoftmax;
  const float alpha = static_cast<float>(softmax ? c.full_attn_alpha : c.linear_attn_alpha);
  const float beta = static_cast<float>(softmax ? c.full_attn_beta : c.linear_attn_beta);

  float* u = ops.Scratch(Slot::kNormed, T * H);   // [T, H]
  float* a = ops.Scratch(Slot::kAttnOut, T * H);  // [T, H]
  MMX_RETURN_IF_ERROR(ops.RmsNorm(x, T, H, w.input_norm.data(), eps, u));
  if (softmax) {
    MMX_RETURN_IF_ERROR(Softmax(ops, c, w.softmax, batch, w.layer, ranks, u, a));
  } else {
    MMX_RETURN_IF_ERROR(Lightning(ops, c, w.lightning, batch, w.layer, ranks, u, a));
  }
  // Postnorm: the skip path carries alpha * norm(x), never x itself (MODEL.md §2).
  const float* skip = c.postnorm ? u : x;
  MMX_RETURN_IF_ERROR(ops.Axpby(alpha, skip, beta, a, T * H, a));  // a is now y
  if (!c.postnorm) MMX_RETURN_IF_ERROR(ops.Copy(a, T * H, residual));
  MMX_RETURN_IF_ERROR(ops.RmsNorm(a, T, H, w.post_norm.data(), eps, x));  // x is now w

  const int E = c.num_local_experts, K = c.num_experts_per_tok;
  float* logits = ops.Scratch(Slot::kRouterLogits, T * E);
  MMX_RETURN_IF_ERROR(ops.Gemm(x, T, w.router, logits));
  return ops.RouterTopK(logits, T, E, K, routing);
}

// layers.h RunExpertPairs: rows [n, H] and out [n, H] in the backend's memory; expert ids and
// weights in host memory. Returns the expert weight bytes read.
template <class Ops, class Moe>
absl::StatusOr<int64_t> ExpertPairs(Ops& ops, const ModelConfig& c, const Moe& experts, const float* rows,
                                    const int* expert_ids, const float* weights, int64_t n, float* out) {
  const int64_t H = c.hidden_size, F = c.intermediate_size;
  const int E = static_cast<int>(experts.experts.size());
  // Pairs grouped by expert (ascending id, pairs in order within each): expert e's inputs are
  // rows [first[e], first[e + 1]) of `in`, so each expert's weights are read once per call.
  std::vector<int64_t> first(E + 1, 0), order(n);
  for (int64_t i = 0; i < n; ++i) {
    MMX_CHECK(expert_ids[i] >= 0 && expert_ids[i] < E);  // callers check ids from the wire first
    ++first[expert_ids[i] + 1];
  }
  for (int e = 0; e < E; ++e) first[e + 1] += first[e];
  {
    std::vector<int64_t> next(first.begin(), first.end() - 1);
    for (int64_t i = 0; i < n; ++i) order[next[expert_ids[i]]++] = i;
  }
  float* in = ops.Scratch(Slot::kExpertRows, n * H);
  float* gate = ops.Scratch(Slot::kFfnGate, n * F);
  float* up = ops.Scratch(Slot::kFfnUp, n * F);
  float* res = ops.Scratch(Slot::kExpertOut, n * H);
  MMX_RETURN_IF_ERROR(ops.GatherRows(rows, order, H, in));

  // All experts' gate and up projections in one grouped GEMM, then all down projections in
  // another: two pool round-trips (or launch batches) per layer instead of three per expert.
  int64_t bytes_read = 0;
  std::vector<kernels::GemmProblem> gate_up, down;
  for (int e = 0; e < E; ++e) {
    const int64_t m = first[e + 1] - first[e];
    if (m == 0) continue;
    const auto& expert = experts.experts[e];
    MMX_CHECK(expert.loaded());  // the caller routes only pairs whose expert this process holds
    const int64_t r = first[e];
    gate_up.push_back({in + r * H, m, expert.w1, gate + r * F});
    gate_up.push_back({in + r * H, m, expert.w3, up + r * F});
    down.push_back({gate + r * F, m, expert.w2, res + r * H});
    bytes_read += WeightBytes(expert.w1) + WeightBytes(expert.w2) + WeightBytes(expert.w3);
  }
  MMX_RETURN_IF_ERROR(ops.GemmGroup(gate_up.data(), static_cast<int64_t>(gate_up.size())));
  MMX_RETURN_IF_ERROR(ops.SiluMul(gate, up, n * F, gate));
  MMX_RETURN_IF_ERROR(ops.GemmGroup(down.data(), static_cast<int64_t>(down.size())));
  std::vector<float> scale(n);
  for (int64_t r = 0; r < n; ++r) scale[r] = weights[order[r]];
  MMX_RETURN_IF_ERROR(ops.ScaleScatterRows(res, scale, order, H, out));
  return bytes_read;
}

// The final norm of the given rows of x [T, H]: h [rows.size(), H], both in backend memory.
template <class Ops, class Tail>
absl::Status FinalNorm(Ops& ops, const ModelConfig& c, const Tail& tail, const float* x,
                       const std::vector<int64_t>& rows, float* h) {
  const int64_t H = c.hidden_size;
  const int64_t n = static_cast<int64_t>(rows.size());
  MMX_RETURN_IF_ERROR(ops.GatherRows(x, rows, H, h));
  return ops.RmsNorm(h, n, H, tail.final_norm.data(), static_cast<float>(c.rms_norm_eps), h);
}

// layers.h ComputeLogits: final norm and lm_head for the given rows of x [T, H] (backend
// memory): logits [rows.size(), V] in backend memory.
template <class Ops, class Tail>
absl::Status Logits(Ops& ops, const ModelConfig& c, const Tail& tail, const float* x, const std::vector<int64_t>& rows,
                    float* logits) {
  float* h = ops.Scratch(Slot::kTail, static_cast<int64_t>(rows.size()) * c.hidden_size);
  MMX_RETURN_IF_ERROR(FinalNorm(ops, c, tail, x, rows, h));
  return ops.Gemm(h, static_cast<int64_t>(rows.size()), tail.lm_head, logits);
}

}  // namespace mmx::model::recipe
