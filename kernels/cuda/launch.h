// The device side of kernels_cuda.h: one Launch* function per .cu file's kernels, with plain
// arguments and a cudaError_t result (cudaGetLastError after the launch). No absl and nothing
// newer than C++17, because nvcc compiles this header. Arguments arrive validated by
// kernels_cuda.cc (sizes positive, shapes consistent, pointers non-null); these functions only
// pick a kernel and a grid. Internal to kernels/cuda.
#pragma once

#include <cstddef>
#include <cstdint>

#include <cuda_runtime_api.h>

namespace mmx::kernels::cuda::internal {

// gemm.cu
// The most tokens one GEMV launch handles (accumulators live in registers).
constexpr int kMaxGemvTokens = 8;
// y[t, o] = sum_i x[t, i] * bf16 w[o, i] in fp32, for num_tokens <= kMaxGemvTokens.
struct GemvArgs {
  const float* x;      // [num_tokens, cols]
  int num_tokens;
  const uint16_t* w;   // [rows, cols] bf16
  int64_t rows;
  int64_t cols;
  float* y;            // [num_tokens, rows]
  // Split over K (the columns) into `splits` ranges when the rows alone give too few blocks to
  // fill the GPU (a router's 32 rows, a tensor-parallel slice): each range's sums go to
  // partials [splits, num_tokens, rows], then one pass adds them in order (deterministic).
  int splits = 1;
  float* partials = nullptr;
};
// The K splits GemvBf16 takes for this shape on the vectorised path (1 for the scalar one):
// enough blocks for a large GPU (~256), at least 32 16-byte chunks of a row per split.
int GemvBf16Splits(int64_t rows, int64_t cols);
cudaError_t LaunchGemvBf16(const GemvArgs& args, cudaStream_t stream);
// gemm_int8.cu: y[t, o] = scales[o] * sum_i x[t, i] * int8 w[o, i] in fp32, for num_tokens <=
// kMaxGemvInt8Tokens (the weights read once).
constexpr int kMaxGemvInt8Tokens = 32;
struct GemvInt8Args {
  const float* x;       // [num_tokens, cols]
  int num_tokens;
  const int8_t* w;      // [rows, cols]
  const float* scales;  // [rows]
  int64_t rows;
  int64_t cols;
  float* y;             // [num_tokens, rows]
};
cudaError_t LaunchGemvInt8(const GemvInt8Args& args, cudaStream_t stream);
// out[i] = bf16(x[i]), round to nearest even.
cudaError_t LaunchFloatToBf16(const float* x, int64_t n, uint16_t* out, cudaStream_t stream);

// elementwise.cu
cudaError_t LaunchRmsNorm(const float* x, int64_t num_tokens, int64_t n, const float* gamma,
                          float eps, float* out, cudaStream_t stream);
cudaError_t LaunchSiluMul(const float* gate, const float* up, int64_t n, float* out,
                          cudaStream_t stream);
cudaError_t LaunchSigmoidMulInPlace(const float* gate, float* x, int64_t n, cudaStream_t stream);
struct RopeArgs {
  float* x;                 // [num_tokens, num_heads * head_dim]
  int64_t num_tokens;
  int num_heads;
  int head_dim;
  int rotary_dim;
  const int64_t* positions;  // [num_tokens]
  const float* inv_freq;     // [rotary_dim / 2]
};
cudaError_t LaunchApplyRope(const RopeArgs& args, cudaStream_t stream);
cudaError_t LaunchSiluInPlace(float* x, int64_t n, cudaStream_t stream);
cudaError_t LaunchAxpby(float alpha, const float* a, float beta, const float* b, int64_t n, float* out,
                        cudaStream_t stream);

// rows.cu
// Element types EmbedRows reads (WeightView's BF16, F16 and F32).
enum class EmbedDType { kBf16, kF16, kF32 };
struct EmbedRowsArgs {
  const void* embed;     // [rows, cols] in `dtype`
  EmbedDType dtype;
  int64_t rows;
  int64_t cols;
  const int32_t* ids;    // [num_tokens]
  int64_t num_tokens;
  float* out;            // [num_tokens, cols]
};
cudaError_t LaunchEmbedRows(const EmbedRowsArgs& args, cudaStream_t stream);
// dst[r, :] = src[index[r], :]; a negative index writes a NaN row.
cudaError_t LaunchGatherRows(const float* src, const int64_t* index, int64_t n, int64_t width, float* dst,
                             cudaStream_t stream);
// dst[index[r], :] = scale[r] * src[r, :]; a negative index writes nothing.
cudaError_t LaunchScaleScatterRows(const float* src, const float* scale, const int64_t* index, int64_t n,
                                   int64_t width, float* dst, cudaStream_t stream);

// router.cu
constexpr int kMaxRouterK = 8;
cudaError_t LaunchRouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k,
                             int* ids, float* weights, cudaStream_t stream);
cudaError_t LaunchArgmaxRows(const float* logits, int64_t num_rows, int64_t vocab, int32_t* ids,
                             cudaStream_t stream);

// lightning.cu
constexpr int kMaxLightningHeadDim = 512;
struct LightningDecodeArgs {
  int num_heads;
  int head_dim;
  const float* slopes;  // [num_heads]
  const float* qkv;     // [num_seqs, num_heads * 3 * head_dim]
  int64_t num_seqs;
  float* state_pool;    // [num_slots, num_heads, head_dim, head_dim]
  int64_t num_slots;
  const int32_t* slots;  // [num_seqs]
  float* out;           // [num_seqs, num_heads * head_dim]
};
cudaError_t LaunchLightningDecode(const LightningDecodeArgs& args, cudaStream_t stream);

// lightning_prefill.cu
// Key rows of the state one thread keeps in registers; a block has ceil(head_dim / 16) warps.
constexpr int kLightningPrefillRowsPerThread = 16;
struct LightningPrefillArgs {
  int num_heads;
  int head_dim;          // <= kMaxLightningHeadDim
  const float* slopes;   // [num_heads]
  const float* qkv;      // [n, num_heads * 3 * head_dim]
  int64_t n;
  float* state;          // [num_heads, head_dim, head_dim]
  float* out;            // [n, num_heads * head_dim]
};
// Blocks the launch uses: num_heads * ceil(head_dim / 32).
inline int64_t LightningPrefillBlocks(int num_heads, int head_dim) {
  return static_cast<int64_t>(num_heads) * ((head_dim + 31) / 32);
}
cudaError_t LaunchLightningPrefill(const LightningPrefillArgs& args, cudaStream_t stream);

// lightning_prefill_blocked.cu: the block form on tensor cores (bf16 products, fp32 state), for
// head_dim 64 or 128 on sm_80+. Tokens per block (B) and value columns per thread block.
constexpr int kLightningBlockTokens = 64;
constexpr int kLightningBlockColumns = 64;
inline bool LightningPrefillBlockedSupports(int head_dim) { return head_dim == 64 || head_dim == 128; }
// Blocks the launch uses: num_heads * head_dim / kLightningBlockColumns.
inline int64_t LightningPrefillBlockedBlocks(int num_heads, int head_dim) {
  return static_cast<int64_t>(num_heads) * (head_dim / kLightningBlockColumns);
}
cudaError_t LaunchLightningPrefillBlocked(const LightningPrefillArgs& args, cudaStream_t stream);

// attention.cu
constexpr int kMaxAttentionHeadDim = 256;
constexpr int kAttentionWarpsPerBlock = 2;
constexpr int64_t kAttentionKeysPerWarpTile = 32;
constexpr int64_t kAttentionMaxSplits = 128;

// How many key ranges (blocks per KV head) a decode over total_len keys is split into: about
// 128 keys per block, at most kAttentionMaxSplits, each range a whole number of warp tiles.
inline int64_t AttentionKeysPerSplit(int64_t total_len) {
  int64_t splits = (total_len + 127) / 128;
  if (splits > kAttentionMaxSplits) splits = kAttentionMaxSplits;
  if (splits < 1) splits = 1;
  const int64_t per = (total_len + splits - 1) / splits;
  return (per + kAttentionKeysPerWarpTile - 1) / kAttentionKeysPerWarpTile * kAttentionKeysPerWarpTile;
}
inline int64_t AttentionNumSplits(int64_t total_len) {
  const int64_t per = AttentionKeysPerSplit(total_len);
  return (total_len + per - 1) / per;
}
// Workspace floats: one partial (max, sum, acc[head_dim]) per warp of every split and head.
inline size_t AttentionWorkspaceFloats(int num_heads, int head_dim, int64_t total_len) {
  return static_cast<size_t>(AttentionNumSplits(total_len)) * kAttentionWarpsPerBlock *
         static_cast<size_t>(num_heads) * (static_cast<size_t>(head_dim) + 2);
}

// A KV cache as the attention kernels read it: contiguous fp32 rows [total_len, num_kv_heads *
// head_dim] (k, v), or pages of page_rows such rows (k_pages, v_pages: device arrays of device
// pointers, row r in page r / page_rows), fp32 or bf16. page_rows is a multiple of
// kAttentionKeysPerWarpTile, so a tile of keys never straddles two pages.
struct KvRows {
  const float* k;
  const float* v;
  const void* const* k_pages;  // null: k and v are contiguous fp32
  const void* const* v_pages;
  int64_t page_rows;
  bool bf16;  // paged rows hold bf16 (the fp32's top 16 bits)
};

struct AttentionDecodeArgs {
  int num_heads;
  int num_kv_heads;
  int head_dim;
  float scale;
  const float* q;   // [num_heads * head_dim]
  KvRows kv;        // total_len rows
  int64_t total_len;
  float* out;       // [num_heads * head_dim]
  float* workspace;  // AttentionWorkspaceFloats(...)
};
cudaError_t LaunchAttentionDecode(const AttentionDecodeArgs& args, cudaStream_t stream);

// attention_prefill.cu
// Query rows per block (one warp each) and query heads per block (one GQA group's chunk).
constexpr int64_t kAttentionPrefillRowsPerBlock = 4;
constexpr int kAttentionPrefillMaxGroup = 8;
struct AttentionPrefillArgs {
  int num_heads;
  int num_kv_heads;
  int head_dim;      // <= kMaxAttentionHeadDim
  float scale;
  const float* q;    // [n, num_heads * head_dim]
  int64_t n;
  KvRows kv;         // total_len rows
  int64_t total_len;  // >= n
  float* out;        // [n, num_heads * head_dim]
};
// Grid of the launch: x query-row tiles, y KV heads, z chunks of a GQA group.
inline int64_t AttentionPrefillRowTiles(int64_t n) {
  return (n + kAttentionPrefillRowsPerBlock - 1) / kAttentionPrefillRowsPerBlock;
}
inline int64_t AttentionPrefillHeadChunks(int num_heads, int num_kv_heads) {
  const int group = num_heads / num_kv_heads;
  return (group + kAttentionPrefillMaxGroup - 1) / kAttentionPrefillMaxGroup;
}
cudaError_t LaunchAttentionPrefill(const AttentionPrefillArgs& args, cudaStream_t stream);

}  // namespace mmx::kernels::cuda::internal
