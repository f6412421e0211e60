// The CUDA launchers: kernels/kernels.h's operations on device pointers, enqueued on a
// cudaStream_t, plus what else a GPU worker needs: decode-only kernels (LightningDecode,
// CausalAttentionDecode, ArgmaxRows) and row moves (EmbedRows, GatherRows, ScaleScatterRows,
// Axpby). Each is checked against kernels/cpu's reference loops (the row moves, which kernels/
// has no CPU function for, against the plain loops of model/cpu_layer_ops.h written out in the
// test) by tests/cuda at a stated tolerance (docs/kernels.md "CUDA kernels").
//
// Differences from kernels.h, all because of device memory and streams:
//  - Every pointer (data, gamma, positions, inv_freq, slopes, ids, ...) is a device pointer on
//    the stream's device; WeightView::data too. Nothing is copied to or from the host.
//  - Launchers return absl::Status instead of void: kInvalidArgument / kUnimplemented for
//    arguments they refuse (checked on the host before anything is enqueued, so these need no
//    GPU), or the launch's own error (cuda_status.h). Work runs asynchronously: a fault inside a
//    kernel surfaces at the next synchronising call, not here.
//  - Scratch memory is the caller's: launchers that need it take a workspace pointer and size
//    and say how much through a *WorkspaceBytes function. Nothing here allocates.
//  - Zero-sized work (no tokens, no rows) returns OK without launching.
// Thread safety: launchers keep no state; concurrent calls on different streams are fine.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "kernels/kernels.h"

namespace mmx::kernels::cuda {

// Tokens one GEMV pass keeps in registers. Gemm with more tokens makes several passes (exact
// path) or calls cuBLAS (kBf16 path).
constexpr int64_t kMaxGemvTokens = 8;

struct GemmOptions {
  // kFp32 (default): the hand-written GEMV, exact fp32 products and fp32 sums, ceil(T / 8)
  //   passes over the weights for T tokens. Memory-bound at decode sizes.
  // kBf16: for T > 8 only, activations are rounded to bf16 (nearest even) and cuBLAS GemmEx
  //   multiplies them with the bf16 weights on tensor cores, accumulating in fp32. Like the
  //   CPU's kBf16 mode (kernels.h): not bit-equal to kFp32. T <= 8 stays on the exact GEMV.
  ActivationPrecision precision = ActivationPrecision::kFp32;
  cublasHandle_t cublas = nullptr;  // required by the kBf16 path; Gemm sets its stream
  void* workspace = nullptr;        // device scratch of GemmWorkspaceBytes(...) bytes
  size_t workspace_bytes = 0;
};

// Device scratch Gemm needs for these arguments: num_tokens * w.cols * 2 bytes on the kBf16
// cuBLAS path (the bf16 copy of x), else 0.
size_t GemmWorkspaceBytes(int64_t num_tokens, const WeightView& w, const GemmOptions& options);

// y[t, o] = sum_i x[t, i] * w[o, i] (kernels.h Gemm) for BF16 and weight-only int8 weights
// (kUnimplemented for other dtypes). x [num_tokens, w.cols] fp32, y [num_tokens, w.rows] fp32,
// w.data device bf16; or device int8 with w.scales device fp32 [w.rows] (y = scale * the int8
// dot product, the CPU's format, read once per 32 tokens, in fp32 whatever the activation
// mode). Any shape and alignment works; cols % 8 (bf16) or % 16 (int8) == 0 with 16-byte
// aligned x and w.data takes the vectorised path. kInvalidArgument for the kBf16 path without a cublas handle or with a
// workspace smaller than GemmWorkspaceBytes.
absl::Status Gemm(const float* x, int64_t num_tokens, const WeightView& w, float* y,
                  cudaStream_t stream, const GemmOptions& options = {});

// kernels.h RmsNorm. In place (out == x) is fine.
absl::Status RmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma, float eps,
                     float* out, cudaStream_t stream);
// kernels.h SiluMul: out = silu(gate) * up; out may alias gate or up.
absl::Status SiluMul(const float* gate, const float* up, int64_t n, float* out, cudaStream_t stream);
// kernels.h SigmoidMulInPlace: x = sigmoid(gate) * x.
absl::Status SigmoidMulInPlace(const float* gate, float* x, int64_t n, cudaStream_t stream);
// kernels.h SiluInPlace: x = x * sigmoid(x).
absl::Status SiluInPlace(float* x, int64_t n, cudaStream_t stream);
// out[i] = alpha * a[i] + beta * b[i]; out may alias a or b. Two products and a sum, each
// rounded (no FMA contraction).
absl::Status Axpby(float alpha, const float* a, float beta, const float* b, int64_t n, float* out,
                   cudaStream_t stream);
// kernels.h ApplyRope (rotate-half pairs (i, i + rotary_dim/2), angles fp32(pos) * inv_freq[i]);
// positions [num_tokens] int64 and inv_freq [rotary_dim / 2] are device arrays.
// kInvalidArgument unless rotary_dim is even and 0 < rotary_dim <= head_dim.
absl::Status ApplyRope(float* x, int64_t num_tokens, int num_heads, int head_dim, int rotary_dim,
                       const int64_t* positions, const float* inv_freq, cudaStream_t stream);

// out[t, :] = row ids[t] of embed as fp32 (BF16, F16 or F32 embed; kUnimplemented for I8).
// ids: device int32 [num_tokens]; each must be < embed.rows (caller checks; out of range writes
// NaN rows). embed.data is a device pointer; out [num_tokens, embed.cols]. Exact.
absl::Status EmbedRows(const WeightView& embed, const int32_t* ids, int64_t num_tokens, float* out,
                       cudaStream_t stream);
// dst[r, :] = src[index[r], :] for r < n, rows of `width` floats; index device int64. Each
// index[r] must be a row of src (not checked; a negative one writes a NaN row). Exact.
absl::Status GatherRows(const float* src, const int64_t* index, int64_t n, int64_t width, float* dst,
                        cudaStream_t stream);
// out[i] = x[i] rounded to bf16 (nearest even, as base/bf16.h FloatToBf16), as its 16 bits;
// x and out device memory of n elements (a bf16 KV cache's rows).
absl::Status ConvertToBf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream);
// dst[index[r], :] = scale[r] * src[r, :]; scale device fp32 [n], index device int64 [n]
// (distinct; each a row of dst, not checked; a negative one writes nothing). Rows of dst that no
// index names are left alone. One fp32 product per element, as the CPU's loop.
absl::Status ScaleScatterRows(const float* src, const float* scale, const int64_t* index, int64_t n,
                              int64_t width, float* dst, cudaStream_t stream);

// Largest k RouterTopK accepts (the model uses 2).
constexpr int kMaxRouterK = 8;
// kernels.h RouterTopK: softmax over num_experts, top-k in descending probability with ties to
// the lower expert id, weights renormalised over the chosen k. ids [num_tokens, k] int32,
// weights [num_tokens, k]. kInvalidArgument unless 1 <= k <= min(num_experts, kMaxRouterK).
absl::Status RouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids,
                        float* weights, cudaStream_t stream);

// Greedy sampling: ids[r] = model::Argmax(logits + r * vocab, vocab) for each row (the first
// index of the maximum; NaNs never win, except one at index 0, which the sequential loop never
// leaves). logits [num_rows, vocab] fp32, ids [num_rows] int32. vocab < 2^31.
absl::Status ArgmaxRows(const float* logits, int64_t num_rows, int64_t vocab, int32_t* ids,
                        cudaStream_t stream);

// One lightning-attention decode step for a batch of sequences (kernels.h LightningAttention
// with n == 1, per sequence): for sequence i, head h, with S the state in slot slots[i],
//   S = exp(-slopes[h]) * S + k^T v,   out = q S.
// The states live in a pool so that a batch can name any sequences; a slot outside
// [0, num_slots) leaves the pool alone and writes NaN to that sequence's output. Two
// sequences of one batch must not share a slot.
struct LightningDecodeParams {
  LightningShape shape;            // shape.slopes: device [N]; block_size is ignored
  const float* qkv = nullptr;      // [num_seqs, N * 3 * D], per head [q | k | v] (after SiLU)
  int64_t num_seqs = 0;
  float* state_pool = nullptr;     // [num_slots, N, D, D] fp32, row = key dim; updated in place
  int64_t num_slots = 0;
  const int32_t* slots = nullptr;  // [num_seqs] device
  float* out = nullptr;            // [num_seqs, N * D]
};
// kInvalidArgument unless 0 < D <= 512 and N > 0.
absl::Status LightningDecode(const LightningDecodeParams& params, cudaStream_t stream);

// kernels.h LightningAttention for n >= 1 tokens of ONE sequence with its state [N, D, D] on
// the device (row = key dim, column = value dim), updated in place; qkv [n, N * 3 * D], per head
// [q | k | v] (after SiLU); out [n, N * D]; shape.slopes device [N], shape.block_size ignored.
// Runs the defining recurrence token by token (S = lambda*S + k^T v, o = q S) on CUDA cores,
// the state of each (head, 32 value columns) in one block's registers. The fp32 path, which
// ActivationPrecision::kFp32 uses; LightningPrefillBlocked below is the tensor-core block form for
// kBf16. Matches the CPU LightningAttention (the block form for n > 1) up to fp32 rounding:
// lambda^d here is d roundings of lambda, so the weight of a token d steps back may differ by a
// relative d * 2^-22 (tests/cuda/lightning_test.cc states the tolerance).
// kInvalidArgument unless N >= 1 and 1 <= D <= 512; n == 0 does nothing.
absl::Status LightningPrefill(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                              float* out, cudaStream_t stream);

// LightningPrefill's block form on tensor cores, for ActivationPrecision::kBf16: per block of B
// tokens, the intra-block causal part (Q K^T masked with the decay) and the inter-block part (Q
// times the carried state) as bf16 matrix products with fp32 accumulation, the state updated once
// per block. Same arguments and result as LightningPrefill, within bf16 rounding of it.
// B is fixed at 64 tokens (shape.block_size is ignored; the block size changes rounding only).
// The decay factors exp(-s d), d = 0..64, are fp32 (expf); q, k, v, the masked scores A, the
// decayed v of the state update and the carried state are rounded to bf16 as matrix-product
// inputs only. The state stays fp32 (MODEL.md §3.4). Error against the exact recurrence: each
// term passes through at most four roundings of a relative 2^-8, so an output is within about
// 4 * 2^-8 of the sum of the magnitudes of its terms, the state within 2 * 2^-8
// (tests/cuda/lightning_test.cc states the tolerance). Grid: a thread block per (head, 64 value
// columns), sequential over the blocks of tokens.
// kInvalidArgument unless N >= 1 and D >= 1, and for null pointers; kUnimplemented for D other
// than 64 or 128 (even with n == 0; LightningPrefill takes D up to 512) and on devices below
// compute capability 8.0 (checked last, so it is the one check here that asks the GPU); n == 0
// does nothing.
absl::Status LightningPrefillBlocked(const LightningShape& shape, const float* qkv, int64_t n, float* state,
                                     float* out, cudaStream_t stream);

// kernels.h CausalAttention for any n >= 1 (prefill chunks): q [n, N * D], k and v
// [total_len, num_kv_heads * D] device fp32 (the cache including the n new rows, K after RoPE),
// out [n, N * D]; query i sees keys 0 .. total_len - n + i. Needs no workspace: an online softmax
// per (query, head), a block per 4 query rows x KV head reading each K tile once for them.
// kInvalidArgument unless N is a positive multiple of num_kv_heads, 0 < D <= 256 and
// total_len >= n; n == 0 does nothing.
absl::Status CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k,
                             const float* v, int64_t total_len, float* out, cudaStream_t stream);

// A paged KV cache on the device (model/kv_cache.h's layout): pages of page_rows rows
// [num_kv_heads * D] of K (after RoPE) and of V, fp32 or bf16; k_pages and v_pages are device
// arrays of device pointers, page r / page_rows holding row r.
struct PagedKv {
  const void* const* k_pages = nullptr;
  const void* const* v_pages = nullptr;
  int64_t page_rows = 0;      // a positive multiple of 32
  DType dtype = DType::kF32;  // kF32 or kBF16
};
// CausalAttention over a paged cache; the same checks, and kInvalidArgument for null page
// tables, page_rows that is not a positive multiple of 32, or a dtype other than fp32 and bf16.
absl::Status CausalAttentionPaged(const AttentionShape& shape, const float* q, int64_t n, const PagedKv& kv,
                                  int64_t total_len, float* out, cudaStream_t stream);

// Causal softmax attention of one sequence's single decode query against its whole KV cache
// (kernels.h CausalAttention with n == 1): out = softmax(q k^T * scale) v per query head, query
// head h reading KV head h / (N / num_kv_heads).
struct CausalAttentionDecodeParams {
  AttentionShape shape;
  const float* q = nullptr;    // [N * D], the query at position total_len - 1 (after RoPE)
  const float* k = nullptr;    // [total_len, num_kv_heads * D] fp32, after RoPE; or null and
  const float* v = nullptr;    // [total_len, num_kv_heads * D] fp32                 `paged` set
  PagedKv paged;               // the cache in pages (when k and v are null)
  int64_t total_len = 0;       // keys, the new token's included; >= 1
  float* out = nullptr;        // [N * D]
  void* workspace = nullptr;   // device scratch of CausalAttentionDecodeWorkspaceBytes(...)
  size_t workspace_bytes = 0;
};
// Device scratch for the split-key partials: at most 128 splits x 2 warps x N x (D + 2) floats.
size_t CausalAttentionDecodeWorkspaceBytes(const AttentionShape& shape, int64_t total_len);
// kInvalidArgument unless N is a positive multiple of num_kv_heads, 0 < D <= 256, total_len
// >= 1 and the workspace is large enough.
absl::Status CausalAttentionDecode(const CausalAttentionDecodeParams& params, cudaStream_t stream);

}  // namespace mmx::kernels::cuda
