// Reference loops: see reference.h. Every loop follows the formula in MODEL.md literally.
#include "kernels/cpu/reference.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "base/bf16.h"

namespace mmx::kernels::reference {

float WeightAt(const WeightView& w, int64_t row, int64_t col) {
  const int64_t idx = row * w.cols + col;
  switch (w.dtype) {
    case DType::kBF16: return Bf16ToFloat(static_cast<const uint16_t*>(w.data)[idx]);
    case DType::kF16: return F16ToFloat(static_cast<const uint16_t*>(w.data)[idx]);
    case DType::kF32: return static_cast<const float*>(w.data)[idx];
    case DType::kI8: return w.scales[row] * static_cast<float>(static_cast<const int8_t*>(w.data)[idx]);
  }
  return 0.f;
}

void QuantizeInt8(const WeightView& w, int8_t* q, float* scales) {
  for (int64_t o = 0; o < w.rows; ++o) {
    float max_abs = 0.f;
    for (int64_t i = 0; i < w.cols; ++i) max_abs = std::max(max_abs, std::fabs(WeightAt(w, o, i)));
    const float scale = max_abs / 127.f;
    scales[o] = scale;
    for (int64_t i = 0; i < w.cols; ++i) {
      const double v = scale > 0.f ? std::nearbyint(static_cast<double>(WeightAt(w, o, i)) / scale) : 0.0;
      q[o * w.cols + i] = static_cast<int8_t>(std::clamp(v, -127.0, 127.0));
    }
  }
}

void Gemm(const float* x, int64_t num_tokens, const WeightView& w, float* y) {
  std::vector<float> row(static_cast<size_t>(w.cols));
  for (int64_t o = 0; o < w.rows; ++o) {
    for (int64_t i = 0; i < w.cols; ++i) row[i] = WeightAt(w, o, i);
    for (int64_t t = 0; t < num_tokens; ++t) {
      const float* xt = x + t * w.cols;
      double acc = 0;
      for (int64_t i = 0; i < w.cols; ++i) acc += static_cast<double>(xt[i]) * row[i];
      y[t * w.rows + o] = static_cast<float>(acc);
    }
  }
}

void RmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma, float eps,
             float* out) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* xt = x + t * n;
    float* ot = out + t * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
    const float r = 1.f / std::sqrt(static_cast<float>(ss / static_cast<double>(n)) + eps);
    for (int64_t i = 0; i < n; ++i) ot[i] = xt[i] * r * gamma[i];
  }
}

namespace {
float Sigmoid(float v) { return 1.f / (1.f + std::exp(-v)); }
}  // namespace

void SiluInPlace(float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = x[i] * Sigmoid(x[i]);
}

void SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) out[i] = gate[i] * Sigmoid(gate[i]) * up[i];
}

void SigmoidMulInPlace(const float* gate, float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] = Sigmoid(gate[i]) * x[i];
}

void ApplyRope(float* x, int64_t num_tokens, int num_heads, int head_dim, int rotary_dim,
               const int64_t* positions, const float* inv_freq) {
  const int half = rotary_dim / 2;
  for (int64_t t = 0; t < num_tokens; ++t) {
    for (int h = 0; h < num_heads; ++h) {
      float* xh = x + (t * num_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const float angle = static_cast<float>(positions[t]) * inv_freq[i];
        const float c = std::cos(angle), s = std::sin(angle);
        const float x0 = xh[i], x1 = xh[i + half];
        xh[i] = x0 * c - x1 * s;
        xh[i + half] = x1 * c + x0 * s;
      }
    }
  }
}

void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k,
                     const float* v, int64_t total_len, float* out) {
  const int D = shape.head_dim;
  const int group = shape.num_heads / shape.num_kv_heads;
  const int64_t q_stride = static_cast<int64_t>(shape.num_heads) * D;
  const int64_t kv_stride = static_cast<int64_t>(shape.num_kv_heads) * D;
  std::vector<float> p(static_cast<size_t>(total_len));
  for (int64_t i = 0; i < n; ++i) {
    const int64_t num_keys = total_len - n + i + 1;
    for (int h = 0; h < shape.num_heads; ++h) {
      const float* qi = q + i * q_stride + h * D;
      const int kvh = h / group;
      // Max-subtracted softmax: exp never sees a positive argument.
      float max_score = -INFINITY;
      for (int64_t j = 0; j < num_keys; ++j) {
        const float* kj = k + j * kv_stride + kvh * D;
        double dot = 0;
        for (int d = 0; d < D; ++d) dot += static_cast<double>(qi[d]) * kj[d];
        p[j] = static_cast<float>(dot) * shape.scale;
        max_score = std::max(max_score, p[j]);
      }
      double sum = 0;
      for (int64_t j = 0; j < num_keys; ++j) {
        p[j] = std::exp(p[j] - max_score);
        sum += p[j];
      }
      float* oi = out + i * q_stride + h * D;
      for (int d = 0; d < D; ++d) {
        double acc = 0;
        for (int64_t j = 0; j < num_keys; ++j) acc += static_cast<double>(p[j]) * v[j * kv_stride + kvh * D + d];
        oi[d] = static_cast<float>(acc / sum);
      }
    }
  }
}

void LightningRecurrence(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                         float* out) {
  const int N = shape.num_heads, D = shape.head_dim;
  const int64_t qkv_stride = static_cast<int64_t>(N) * 3 * D;
  for (int h = 0; h < N; ++h) {
    const float lambda = std::exp(-shape.slopes[h]);
    float* S = state + static_cast<int64_t>(h) * D * D;  // [D key, D value]
    for (int64_t t = 0; t < n; ++t) {
      const float* q = qkv + t * qkv_stride + static_cast<int64_t>(h) * 3 * D;
      const float* kk = q + D;
      const float* vv = q + 2 * D;
      for (int a = 0; a < D; ++a)
        for (int b = 0; b < D; ++b) S[a * D + b] = lambda * S[a * D + b] + kk[a] * vv[b];
      float* o = out + t * N * D + static_cast<int64_t>(h) * D;
      for (int b = 0; b < D; ++b) {
        double acc = 0;
        for (int a = 0; a < D; ++a) acc += static_cast<double>(q[a]) * S[a * D + b];
        o[b] = static_cast<float>(acc);
      }
    }
  }
}

namespace {

// One head, one block of m tokens starting at token t0 (MODEL.md §3.4). S: [D, D], in and out.
void LightningBlock(float s, int D, int N, int h, const float* qkv, int64_t t0, int m, float* S,
                    float* out) {
  const int64_t qkv_stride = static_cast<int64_t>(N) * 3 * D;
  auto Q = [&](int i) { return qkv + (t0 + i) * qkv_stride + static_cast<int64_t>(h) * 3 * D; };
  auto K = [&](int i) { return Q(i) + D; };
  auto V = [&](int i) { return Q(i) + 2 * D; };
  // The decay tables of the original, each exp() of a non-positive argument.
  std::vector<float> q_decay(m), k_decay(m);
  for (int i = 0; i < m; ++i) q_decay[i] = std::exp(-s * static_cast<float>(i + 1));
  for (int j = 0; j < m; ++j) k_decay[j] = std::exp(-s * static_cast<float>(m - 1 - j));
  const float block_decay = std::exp(-s * static_cast<float>(m));
  for (int i = 0; i < m; ++i) {
    const float* qi = Q(i);
    float* o = out + (t0 + i) * N * D + static_cast<int64_t>(h) * D;
    std::vector<double> acc(D, 0.0);
    // inter: lambda^(i+1) * (q_i . S0)
    for (int a = 0; a < D; ++a)
      for (int b = 0; b < D; ++b) acc[b] += static_cast<double>(q_decay[i]) * qi[a] * S[a * D + b];
    // intra: sum_{j<=i} lambda^(i-j) (q_i . k_j) v_j
    for (int j = 0; j <= i; ++j) {
      const float diag = std::exp(-s * static_cast<float>(i - j));
      double qk = 0;
      for (int a = 0; a < D; ++a) qk += static_cast<double>(qi[a]) * K(j)[a];
      for (int b = 0; b < D; ++b) acc[b] += diag * qk * V(j)[b];
    }
    for (int b = 0; b < D; ++b) o[b] = static_cast<float>(acc[b]);
  }
  // S_new = lambda^m S0 + sum_j lambda^(m-1-j) k_j^T v_j
  for (int a = 0; a < D; ++a) {
    for (int b = 0; b < D; ++b) {
      double acc = static_cast<double>(block_decay) * S[a * D + b];
      for (int j = 0; j < m; ++j) acc += static_cast<double>(k_decay[j]) * K(j)[a] * V(j)[b];
      S[a * D + b] = static_cast<float>(acc);
    }
  }
}

}  // namespace

void LightningAttention(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                        float* out) {
  if (n == 1) {
    LightningRecurrence(shape, qkv, n, state, out);
    return;
  }
  const int N = shape.num_heads, D = shape.head_dim;
  const int B = std::max(1, shape.block_size);
  for (int h = 0; h < N; ++h) {
    float* S = state + static_cast<int64_t>(h) * D * D;
    for (int64_t t0 = 0; t0 < n; t0 += B) {
      const int m = static_cast<int>(std::min<int64_t>(B, n - t0));
      LightningBlock(shape.slopes[h], D, N, h, qkv, t0, m, S, out);
    }
  }
}

void RouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids,
                float* weights) {
  std::vector<float> p(static_cast<size_t>(num_experts));
  std::vector<int> order(static_cast<size_t>(num_experts));
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float* z = logits + t * num_experts;
    float max_z = -INFINITY;
    for (int e = 0; e < num_experts; ++e) max_z = std::max(max_z, z[e]);
    float sum = 0;
    for (int e = 0; e < num_experts; ++e) {
      p[e] = std::exp(z[e] - max_z);
      sum += p[e];
    }
    for (int e = 0; e < num_experts; ++e) p[e] /= sum;
    for (int e = 0; e < num_experts; ++e) order[e] = e;
    // Stable sort: equal probabilities keep ascending expert id.
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[a] > p[b]; });
    float top_sum = 0;
    for (int j = 0; j < k; ++j) top_sum += p[order[j]];
    for (int j = 0; j < k; ++j) {
      ids[t * k + j] = order[j];
      weights[t * k + j] = p[order[j]] / top_sum;
    }
  }
}

}  // namespace mmx::kernels::reference
