// The public mmx::kernels launchers that have no faster version than their reference loop: the
// router works on E = 32 logits per token, far too little to vectorize profitably. The other
// launchers live beside their fast implementations (gemm.cc, elementwise.cc, rope.cc,
// attention.cc, lightning.cc).
#include "kernels/kernels.h"

#include "kernels/cpu/reference.h"

namespace mmx::kernels {

void RouterTopK(const float* logits, int64_t num_tokens, int num_experts, int k, int* ids,
                float* weights) {
  reference::RouterTopK(logits, num_tokens, num_experts, k, ids, weights);
}

}  // namespace mmx::kernels
