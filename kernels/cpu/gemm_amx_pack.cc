// Activation tiles for the AMX kernel (gemm_amx.h), built for the baseline ISA.
#include "base/bf16.h"
#include "kernels/cpu/gemm_amx.h"

namespace mmx::kernels::internal {

AmxPackedActivations PackAmxActivations(const float* x, int64_t num_tokens, int64_t cols, int parts,
                                        std::vector<uint16_t>& buf) {
  AmxPackedActivations p;
  p.num_tokens = num_tokens;
  p.token_blocks = (num_tokens + kAmxTokens - 1) / kAmxTokens;
  p.chunks = cols / kAmxK;
  p.parts = parts;
  buf.assign(static_cast<size_t>(p.token_blocks * p.chunks * p.parts * kAmxTileElems), 0);
  for (int64_t t = 0; t < num_tokens; ++t) {
    const int64_t b = t / kAmxTokens, j = t % kAmxTokens;
    const float* row = x + t * cols;
    for (int64_t k = 0; k < cols; ++k) {
      const int64_t c = k / kAmxK, r = (k % kAmxK) / 2, e = k % 2;
      uint16_t* tile = buf.data() + (b * p.chunks + c) * p.parts * kAmxTileElems + r * 2 * kAmxTokens + j * 2 + e;
      const uint16_t hi = FloatToBf16(row[k]);
      tile[0] = hi;
      if (p.parts == 1) continue;
      const float rest = row[k] - Bf16ToFloat(hi);  // exact: hi holds x's leading bits
      const uint16_t mid = FloatToBf16(rest);
      tile[kAmxTileElems] = mid;
      tile[2 * kAmxTileElems] = FloatToBf16(rest - Bf16ToFloat(mid));
    }
  }
  p.data = buf.data();
  return p;
}

}  // namespace mmx::kernels::internal
