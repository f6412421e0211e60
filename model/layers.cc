#include "model/layers.h"

#include <algorithm>
#include <cmath>

#include "base/bf16.h"
#include "base/status_macros.h"
#include "model/scratch.h"

namespace mmx::model {
namespace {

// The lightning output norm's eps: the module's constructor default, not rms_norm_eps (MODEL.md §3.6).
constexpr float kLightningNormEps = 1e-6f;

// Lightning attention on the normed input u [T, H]: a [T, H].
void LightningForward(const ModelConfig& c, const LightningWeights& w, const BatchLayout& batch,
                      int layer, const float* u, float* a) {
  const int64_t T = batch.num_tokens;
  const int64_t qw = c.q_width();  // N*D
  Scratch& scratch = Scratch::ForThisThread();
  float* qkv = scratch.Get(Slot::kQkv, T * 3 * qw);  // [T, N*3*D]
  kernels::Gemm(u, T, w.qkv, qkv);
  kernels::SiluInPlace(qkv, T * 3 * qw);

  float* o = scratch.Get(Slot::kHeads, T * qw);  // [T, N*D], heads concatenated
  kernels::LightningShape shape{c.num_attention_heads, c.head_dim, w.slopes.data(),
                                c.lightning_block_size};
  for (const SequenceSlice& s : batch.sequences) {
    LayerState& state = s.state->layer(layer);
    kernels::LightningAttention(shape, qkv + s.row_begin * 3 * qw, s.num_tokens,
                                state.lightning.data(), o + s.row_begin * qw);
    state.length += s.num_tokens;
  }
  // One RMSNorm over all N*D features, then the sigmoid gate from the same u.
  kernels::RmsNorm(o, T, qw, w.norm.data(), kLightningNormEps, o);
  float* gate = scratch.Get(Slot::kGate, T * qw);
  kernels::Gemm(u, T, w.gate, gate);
  kernels::SigmoidMulInPlace(gate, o, T * qw);
  kernels::Gemm(o, T, w.out, a);
}

// Softmax attention (GQA, partial rotate-half RoPE, KV cache) on u [T, H]: a [T, H].
void SoftmaxForward(const ModelConfig& c, const SoftmaxWeights& w, const BatchLayout& batch,
                    int layer, const float* u, float* a) {
  const int64_t T = batch.num_tokens;
  const int64_t qw = c.q_width(), kvw = c.kv_width();
  Scratch& scratch = Scratch::ForThisThread();
  float* q = scratch.Get(Slot::kQ, T * qw);
  float* k = scratch.Get(Slot::kK, T * kvw);
  float* v = scratch.Get(Slot::kV, T * kvw);
  kernels::Gemm(u, T, w.q, q);
  kernels::Gemm(u, T, w.k, k);
  kernels::Gemm(u, T, w.v, v);
  kernels::ApplyRope(q, T, c.num_attention_heads, c.head_dim, c.rotary_dim,
                     batch.positions.data(), w.inv_freq.data());
  kernels::ApplyRope(k, T, c.num_key_value_heads, c.head_dim, c.rotary_dim,
                     batch.positions.data(), w.inv_freq.data());

  float* o = scratch.Get(Slot::kHeads, T * qw);
  kernels::AttentionShape shape{c.num_attention_heads, c.num_key_value_heads, c.head_dim,
                                1.0f / std::sqrt(static_cast<float>(c.head_dim))};
  for (const SequenceSlice& s : batch.sequences) {
    LayerState& state = s.state->layer(layer);
    MMX_CHECK(state.length == s.start_position);
    const float* k_new = k + s.row_begin * kvw;
    const float* v_new = v + s.row_begin * kvw;
    state.keys.insert(state.keys.end(), k_new, k_new + s.num_tokens * kvw);
    state.values.insert(state.values.end(), v_new, v_new + s.num_tokens * kvw);
    state.length += s.num_tokens;
    kernels::CausalAttention(shape, q + s.row_begin * qw, s.num_tokens, state.keys.data(),
                             state.values.data(), state.length, o + s.row_begin * qw);
  }
  kernels::Gemm(o, T, w.o, a);
}

}  // namespace

void BatchLayout::Add(int64_t num_new_tokens, int64_t start_position, SequenceState* state) {
  sequences.push_back(SequenceSlice{num_tokens, num_new_tokens, start_position, state});
  for (int64_t i = 0; i < num_new_tokens; ++i) positions.push_back(start_position + i);
  num_tokens += num_new_tokens;
}

void AttentionBlockForward(const ModelConfig& c, const AttentionBlockWeights& w,
                           const BatchLayout& batch, float* x, std::vector<float>* residual,
                           Routing* routing) {
  const int64_t T = batch.num_tokens, H = c.hidden_size;
  const float eps = static_cast<float>(c.rms_norm_eps);
  const bool softmax = w.kind == AttentionKind::kSoftmax;
  const float alpha = static_cast<float>(softmax ? c.full_attn_alpha : c.linear_attn_alpha);
  const float beta = static_cast<float>(softmax ? c.full_attn_beta : c.linear_attn_beta);

  Scratch& scratch = Scratch::ForThisThread();
  float* u = scratch.Get(Slot::kNormed, T * H);    // [T, H]
  float* a = scratch.Get(Slot::kAttnOut, T * H);   // [T, H]
  kernels::RmsNorm(x, T, H, w.input_norm.data(), eps, u);
  if (softmax) {
    SoftmaxForward(c, w.softmax, batch, w.layer, u, a);
  } else {
    LightningForward(c, w.lightning, batch, w.layer, u, a);
  }
  // Postnorm: the skip path carries alpha * norm(x), never x itself (MODEL.md §2).
  const float* skip = c.postnorm ? u : x;
  for (int64_t i = 0; i < T * H; ++i) a[i] = alpha * skip[i] + beta * a[i];  // a is now y
  if (c.postnorm) {
    residual->clear();
  } else {
    residual->assign(a, a + T * H);
  }
  kernels::RmsNorm(a, T, H, w.post_norm.data(), eps, x);  // x is now w

  const int E = c.num_local_experts, K = c.num_experts_per_tok;
  float* logits = scratch.Get(Slot::kRouterLogits, T * E);
  kernels::Gemm(x, T, w.router, logits);
  routing->k = K;
  routing->expert_ids.resize(T * K);
  routing->weights.resize(T * K);
  kernels::RouterTopK(logits, T, E, K, routing->expert_ids.data(), routing->weights.data());
}

void ExpertFfn(const ExpertWeights& expert, const float* rows, int64_t n, int64_t intermediate,
               float* out) {
  Scratch& scratch = Scratch::ForThisThread();
  float* gate = scratch.Get(Slot::kFfnGate, n * intermediate);  // [n, F]
  float* up = scratch.Get(Slot::kFfnUp, n * intermediate);      // [n, F]
  kernels::Gemm(rows, n, expert.w1, gate);
  kernels::Gemm(rows, n, expert.w3, up);
  kernels::SiluMul(gate, up, n * intermediate, gate);
  kernels::Gemm(gate, n, expert.w2, out);
}

int64_t RunExpertPairs(const ModelConfig& c, const MoeWeights& experts, const float* rows,
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
  Scratch& scratch = Scratch::ForThisThread();
  float* in = scratch.Get(Slot::kExpertRows, n * H);
  float* gate = scratch.Get(Slot::kFfnGate, n * F);
  float* up = scratch.Get(Slot::kFfnUp, n * F);
  float* res = scratch.Get(Slot::kExpertOut, n * H);
  for (int64_t r = 0; r < n; ++r) std::copy_n(rows + order[r] * H, H, in + r * H);

  // All experts' gate and up projections in one grouped GEMM, then all down projections in
  // another: the same per-row math as ExpertFfn, with two pool round-trips per layer instead
  // of three per expert.
  int64_t bytes_read = 0;
  std::vector<kernels::GemmProblem> gate_up, down;
  for (int e = 0; e < E; ++e) {
    const int64_t m = first[e + 1] - first[e];
    if (m == 0) continue;
    const ExpertWeights& expert = experts.experts[e];
    MMX_CHECK(expert.loaded());  // the caller routes only pairs whose expert this process holds
    const int64_t r = first[e];
    gate_up.push_back({in + r * H, m, expert.w1, gate + r * F});
    gate_up.push_back({in + r * H, m, expert.w3, up + r * F});
    down.push_back({gate + r * F, m, expert.w2, res + r * H});
    bytes_read += WeightBytes(expert.w1) + WeightBytes(expert.w2) + WeightBytes(expert.w3);
  }
  kernels::GemmGroup(gate_up.data(), static_cast<int64_t>(gate_up.size()));
  kernels::SiluMul(gate, up, n * F, gate);
  kernels::GemmGroup(down.data(), static_cast<int64_t>(down.size()));
  for (int64_t r = 0; r < n; ++r) {
    const int64_t i = order[r];
    const float scale = weights[i];
    float* dst = out + i * H;
    const float* src = res + r * H;
    for (int64_t h = 0; h < H; ++h) dst[h] = scale * src[h];
  }
  return bytes_read;
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

int64_t RunExperts(const ModelConfig& c, const MoeWeights& experts, const float* w,
                   int64_t num_tokens, const Routing& routing, float* m) {
  const int64_t H = c.hidden_size;
  const int64_t pairs = num_tokens * routing.k;
  Scratch& scratch = Scratch::ForThisThread();
  // Row t*K + j is token t's input for its j-th chosen expert.
  float* rows = scratch.Get(Slot::kPairRows, pairs * H);
  float* contributions = scratch.Get(Slot::kPairOut, pairs * H);
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int j = 0; j < routing.k; ++j) std::copy_n(w + t * H, H, rows + (t * routing.k + j) * H);
  }
  const int64_t bytes_read = RunExpertPairs(c, experts, rows, routing.expert_ids.data(),
                                            routing.weights.data(), pairs, contributions);
  SumExpertContributions(routing, contributions, num_tokens, H, m);
  return bytes_read;
}

void CombineMoe(const ModelConfig& c, const float* residual, const float* m, int64_t num_tokens,
                float* x) {
  const float alpha = static_cast<float>(c.mlp_alpha), beta = static_cast<float>(c.mlp_beta);
  const int64_t n = num_tokens * c.hidden_size;
  for (int64_t i = 0; i < n; ++i) x[i] = alpha * residual[i] + beta * m[i];
}

int64_t DecoderLayerForward(const ModelConfig& c, const AttentionBlockWeights& attention,
                            const MoeWeights& experts, const BatchLayout& batch, float* x) {
  const int64_t T = batch.num_tokens;
  std::vector<float> residual;
  Routing routing;
  AttentionBlockForward(c, attention, batch, x, &residual, &routing);
  float* m = Scratch::ForThisThread().Get(Slot::kMoeSum, T * c.hidden_size);
  const int64_t bytes_read = RunExperts(c, experts, x, T, routing, m);
  CombineMoe(c, c.postnorm ? x : residual.data(), m, T, x);
  return bytes_read;
}

void EmbedTokens(const kernels::WeightView& embed, const int32_t* token_ids, int64_t num_tokens,
                 float* x) {
  const int64_t H = embed.cols;
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
}

void ComputeLogits(const ModelConfig& c, const TailWeights& tail, const float* x,
                   const std::vector<int64_t>& rows, float* logits) {
  const int64_t H = c.hidden_size;
  const int64_t n = static_cast<int64_t>(rows.size());
  float* h = Scratch::ForThisThread().Get(Slot::kTail, n * H);
  for (int64_t i = 0; i < n; ++i) std::copy_n(x + rows[i] * H, H, h + i * H);
  kernels::RmsNorm(h, n, H, tail.final_norm.data(), static_cast<float>(c.rms_norm_eps), h);
  kernels::Gemm(h, n, tail.lm_head, logits);
}

}  // namespace mmx::model
