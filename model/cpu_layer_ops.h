// CpuLayerOps: the recipe's backend (model/layer_recipe.h) on host memory, over kernels/kernels.h.
// Sequence state lives in SequenceState's host vectors. Every operation succeeds (host kernels
// have no failure mode); the Status return exists for the recipe's other backends.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "kernels/kernels.h"
#include "base/status_macros.h"
#include "model/layers.h"
#include "model/scratch.h"
#include "model/sequence_state.h"

namespace mmx::model {

class CpuLayerOps {
 public:
  float* Scratch(Slot slot, size_t n) { return scratch_.Get(slot, n); }
  double* RowSums(int64_t T) {
    row_sums_.resize(static_cast<size_t>(T));
    return row_sums_.data();
  }

  absl::Status Gemm(const float* x, int64_t T, const kernels::WeightView& w, float* y) {
    kernels::Gemm(x, T, w, y);
    return absl::OkStatus();
  }
  absl::Status GemmGroup(const kernels::GemmProblem* problems, int64_t count) {
    kernels::GemmGroup(problems, count);
    return absl::OkStatus();
  }
  absl::Status RmsNorm(const float* x, int64_t T, int64_t n, const float* gamma, float eps, float* out) {
    kernels::RmsNorm(x, T, n, gamma, eps, out);
    return absl::OkStatus();
  }
  absl::Status RowSumOfSquares(const float* x, int64_t T, int64_t width, double* sums) {
    kernels::RowSumOfSquares(x, T, width, sums);
    return absl::OkStatus();
  }
  absl::Status NormalizeRows(const float* x, int64_t T, int64_t width, const double* sums, int64_t full_width,
                             const float* gamma, float eps, float* out) {
    kernels::NormalizeRows(x, T, width, sums, full_width, gamma, eps, out);
    return absl::OkStatus();
  }
  absl::Status SiluInPlace(float* x, int64_t n) {
    kernels::SiluInPlace(x, n);
    return absl::OkStatus();
  }
  absl::Status SiluMul(const float* gate, const float* up, int64_t n, float* out) {
    kernels::SiluMul(gate, up, n, out);
    return absl::OkStatus();
  }
  absl::Status SigmoidMulInPlace(const float* gate, float* x, int64_t n) {
    kernels::SigmoidMulInPlace(gate, x, n);
    return absl::OkStatus();
  }
  absl::Status Axpby(float alpha, const float* a, float beta, const float* b, int64_t n, float* out) {
    for (int64_t i = 0; i < n; ++i) out[i] = alpha * a[i] + beta * b[i];
    return absl::OkStatus();
  }
  absl::Status Copy(const float* src, int64_t n, float* dst) {
    std::copy_n(src, n, dst);
    return absl::OkStatus();
  }
  absl::Status ApplyRope(float* x, int64_t T, int heads, int head_dim, int rotary_dim, const BatchLayout& batch,
                         const float* inv_freq) {
    kernels::ApplyRope(x, T, heads, head_dim, rotary_dim, batch.positions.data(), inv_freq);
    return absl::OkStatus();
  }
  absl::Status Lightning(const kernels::LightningShape& shape, const BatchLayout& batch, int layer, const float* qkv,
                         float* o) {
    const int64_t qw = static_cast<int64_t>(shape.num_heads) * shape.head_dim;
    for (const SequenceSlice& s : batch.sequences) {
      kernels::LightningAttention(shape, qkv + s.row_begin * 3 * qw, s.num_tokens,
                                  s.state->layer(layer).lightning.data(), o + s.row_begin * qw);
    }
    return absl::OkStatus();
  }
  absl::Status AppendKv(SequenceState& state, int layer, const float* k, const float* v, int64_t n) {
    state.layer(layer).kv.Append(k, v, n);
    return absl::OkStatus();
  }
  absl::Status CausalAttention(const kernels::AttentionShape& shape, const float* q, int64_t n, SequenceState& state,
                               int layer, int64_t total_len, float* o) {
    kernels::CausalAttention(shape, q, n, state.layer(layer).kv.view(), total_len, o);
    return absl::OkStatus();
  }
  absl::Status RouterTopK(const float* logits, int64_t T, int E, int K, Routing* routing) {
    routing->k = K;
    routing->expert_ids.resize(T * K);
    routing->weights.resize(T * K);
    kernels::RouterTopK(logits, T, E, K, routing->expert_ids.data(), routing->weights.data());
    if (routing->keep_logits) routing->logits.assign(logits, logits + T * E);
    return absl::OkStatus();
  }
  absl::Status GatherRows(const float* src, const std::vector<int64_t>& index, int64_t width, float* dst) {
    for (size_t r = 0; r < index.size(); ++r) std::copy_n(src + index[r] * width, width, dst + r * width);
    return absl::OkStatus();
  }
  absl::Status ScaleScatterRows(const float* src, const std::vector<float>& scale, const std::vector<int64_t>& index,
                                int64_t width, float* dst) {
    for (size_t r = 0; r < index.size(); ++r) {
      const float s = scale[r];
      const float* from = src + r * width;
      float* to = dst + index[r] * width;
      for (int64_t h = 0; h < width; ++h) to[h] = s * from[h];
    }
    return absl::OkStatus();
  }

 private:
  model::Scratch& scratch_ = model::Scratch::ForThisThread();
  std::vector<double> row_sums_;
};

}  // namespace mmx::model
