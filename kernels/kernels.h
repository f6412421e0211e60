// The numeric primitives behind the model, one launcher API. Every function here runs on the
// CPU (kernels/cpu: AVX2/AVX-512 with runtime dispatch, each with a plain reference loop in
// kernels/cpu/reference.h that the tests use as the oracle). kernels/cuda/ has the GPU launchers
// of the same operations on device memory.
//
// Conventions: activations are fp32, row-major, contiguous. Weight matrices are PyTorch Linear
// weights [out, in] in the checkpoint's own dtype, read in place (usually from an mmap), with
// fp32 accumulation. Shape legend (model/layers.h): T tokens, H hidden, N heads, D head dim,
// E experts, K experts per token, F expert hidden.
//
// Multithreaded kernels use ThreadPool::Default() and must not be called from inside a pool job.
#pragma once

#include <cstdint>

#include "base/dtype.h"

namespace mmx::kernels {

// A weight matrix [rows, cols], row-major, in its stored dtype. Not owning.
// For DType::kI8 the matrix is q [rows, cols] int8 with one fp32 scale per row (output channel):
// element (o, i) = scales[o] * q[o, i]. `scales` is null for every other dtype.
struct WeightView {
  const void* data = nullptr;
  DType dtype = DType::kBF16;
  int64_t rows = 0;
  int64_t cols = 0;
  const float* scales = nullptr;  // [rows], kI8 only

  // Rows [begin, end) of this matrix, still a view.
  WeightView Rows(int64_t begin, int64_t end) const {
    return WeightView{static_cast<const char*>(data) + begin * cols * static_cast<int64_t>(DTypeSize(dtype)),
                      dtype, end - begin, cols, scales != nullptr ? scales + begin : nullptr};
  }
};

// How Gemm treats its fp32 activations.
//   kFp32: exact fp32 products, fp32 sums (the golden-exact mode, and the default).
//   kBf16: activations are rounded to bf16 (nearest even) and multiplied with bf16 weights by
//          dot-product instructions (AVX512_BF16 vdpbf16ps: twice the fp32 FMA rate), sums in
//          fp32. Only BF16 weights with num_tokens > 1 take this path; GEMV (memory-bound) and
//          F16/F32 weights stay exact. Like the official model in bf16, not bit-equal to kFp32.
enum class ActivationPrecision { kFp32, kBf16 };

// The precision Gemm uses on the calling thread (kFp32 unless a ScopedActivationPrecision is
// alive on it).
ActivationPrecision CurrentActivationPrecision();

// Sets the calling thread's activation precision for its lifetime (restores the previous one).
class ScopedActivationPrecision {
 public:
  explicit ScopedActivationPrecision(ActivationPrecision precision);
  ~ScopedActivationPrecision();
  ScopedActivationPrecision(const ScopedActivationPrecision&) = delete;
  ScopedActivationPrecision& operator=(const ScopedActivationPrecision&) = delete;

 private:
  ActivationPrecision previous_;
};

// y[t, o] = sum_i x[t, i] * w[o, i], for t < num_tokens and o < w.rows.
// x: [num_tokens, w.cols] fp32; y: [num_tokens, w.rows] fp32 (overwritten). Each weight row is
// read once per call whatever num_tokens is: batching tokens through one call is what makes
// batched decode cheaper than one call per token.
// I8 weights: y[t, o] = scales[o] * sum_i x[t, i] * q[o, i], the int8 values widened to fp32 in
// registers and summed in fp32 (weight-only quantization: activations stay fp32 in every
// ActivationPrecision). Half the bytes of bf16, so decode (memory-bound) streams twice the rows.
void Gemm(const float* x, int64_t num_tokens, const WeightView& w, float* y);

// Several independent GEMMs, y = x · wᵀ each, with the output rows of all of them shared out to
// the threads in one pool round-trip instead of one per matrix. The experts of an MoE layer
// are many small GEMMs at decode batch sizes (a few tokens each): grouped, threads stay busy
// across matrix boundaries and wait at one barrier per group. Each output element is computed
// exactly as Gemm computes it. Problems whose path Gemm would not share (int8 weights, the
// bf16-activation mode) run one after another through Gemm.
struct GemmProblem {
  const float* x = nullptr;
  int64_t num_tokens = 0;
  WeightView w;
  float* y = nullptr;
};
void GemmGroup(const GemmProblem* problems, int64_t count);

// Symmetric per-row (per-output-channel) int8 quantization of a BF16, F16 or F32 matrix:
// scales[o] = max_i |w[o, i]| / 127 and q[o, i] = round_to_nearest_even(w[o, i] / scales[o]),
// so |w[o, i] - scales[o] * q[o, i]| <= scales[o] / 2 exactly (the quotient is taken in double).
// A row of zeros gets scale 0 and q 0. q: [w.rows, w.cols]; scales: [w.rows]. Multithreaded.
void QuantizeInt8(const WeightView& w, int8_t* q, float* scales);

// out[t, :] = x[t, :] / sqrt(mean(x[t, :]^2) + eps) * gamma, over rows of width n. In place ok.
void RmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma, float eps,
             float* out);

// The lightning output norm when this process holds only some of the heads (parallel/
// rank_split.h): RMSNorm over all heads' features is each rank's per-row sum of squares of its
// slice, summed over the ranks, then each slice normalised with the total.
// sums[t] = sum_i x[t, i]^2 (in double), x [num_tokens, width].
void RowSumOfSquares(const float* x, int64_t num_tokens, int64_t width, double* sums);
// out[t, i] = x[t, i] / sqrt(total[t] / full_width + eps) * gamma[i]; in place ok.
void NormalizeRows(const float* x, int64_t num_tokens, int64_t width, const double* total_sums, int64_t full_width,
                   const float* gamma, float eps, float* out);

// Elementwise: x = x * sigmoid(x) (SiLU), in place.
void SiluInPlace(float* x, int64_t n);
// out = silu(gate) * up (the SwiGLU combine). out may alias gate or up.
void SiluMul(const float* gate, const float* up, int64_t n, float* out);
// x = sigmoid(gate) * x (the lightning output gate), in place on x.
void SigmoidMulInPlace(const float* gate, float* x, int64_t n);

// Rotate-half (NeoX) RoPE on the first rotary_dim dims of every head, in place.
// x: [num_tokens, num_heads * head_dim]; positions: [num_tokens] absolute positions;
// inv_freq: [rotary_dim / 2]. Pairs are (i, i + rotary_dim/2); angles fp32(pos) * inv_freq[i].
void ApplyRope(float* x, int64_t num_tokens, int num_heads, int head_dim, int rotary_dim,
               const int64_t* positions, const float* inv_freq);

struct AttentionShape {
  int num_heads = 0;     // N query heads
  int num_kv_heads = 0;  // KV heads; query head h reads KV head h / (N / num_kv_heads)
  int head_dim = 0;      // D
  float scale = 0.f;     // usually 1/sqrt(D)
};

// A sequence's KV cache as the attention kernel reads it: rows [Nkv*D] of K (after RoPE) and V
// in blocks of `block_tokens` rows each, fp32 or bf16. Row r is row r % block_tokens of block
// r / block_tokens. block_tokens is a multiple of kKvKeyBlock (the kernel walks keys in those).
struct KvCacheView {
  DType dtype = DType::kF32;  // kF32 or kBF16
  int64_t block_tokens = 0;
  const void* const* key_blocks = nullptr;
  const void* const* value_blocks = nullptr;
};
inline constexpr int64_t kKvKeyBlock = 64;

// Causal softmax attention of one sequence's new queries against its KV cache.
// q: [n, N*D] for absolute positions total_len-n .. total_len-1; kv: total_len rows, the cache
// including the n new rows. out: [n, N*D]. Query i sees keys 0..total_len-n+i. Scores and sums
// are fp32 whatever the cache's dtype (bf16 rows are widened exactly).
void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const KvCacheView& kv,
                     int64_t total_len, float* out);
// The same over contiguous fp32 k, v: [total_len, Nkv*D].
void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k,
                     const float* v, int64_t total_len, float* out);

struct LightningShape {
  int num_heads = 0;            // N
  int head_dim = 0;             // D
  const float* slopes = nullptr;  // [N] decay rates s_{l,h} of this layer (lambda = exp(-s))
  int block_size = 256;         // prefill block length B (changes rounding only, not the math)
};

// Lightning attention over n new tokens of one sequence, continuing from `state`.
// qkv: [n, N*3*D], per head [q_h | k_h | v_h] (after SiLU). state: [N, D, D] fp32, row = key dim,
// column = value dim; updated in place to the state after the n tokens. out: [n, N*D].
// n == 1 uses the recurrence S = lambda*S + k^T v, o = q S; n > 1 uses the block form, which
// equals the recurrence exactly in real arithmetic (MODEL.md §3.4).
void LightningAttention(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                        float* out);

// Router: softmax over num_experts logits (fp32), top-k, weights renormalised over the chosen k.
// logits: [num_tokens, num_experts]; ids: [num_tokens, k] in descending probability;
// weights: [num_tokens, k]. Ties go to the lower expert id.
void RouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids,
                float* weights);

}  // namespace mmx::kernels
