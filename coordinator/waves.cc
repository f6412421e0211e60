#include "coordinator/waves.h"

#include <algorithm>

namespace mmx::coordinator {

int64_t NextStepTokens(const SequenceProgress& s, int64_t prefill_chunk) {
  if (s.decoding()) return 1;
  return std::clamp<int64_t>(s.context() - s.processed, 0, prefill_chunk);
}

int ChooseWave(const std::vector<int64_t>& tokens, const std::vector<bool>& busy) {
  int best = 0;
  for (int w = 1; w < static_cast<int>(tokens.size()); ++w) {
    if (tokens[w] < tokens[best] || (tokens[w] == tokens[best] && busy[best] && !busy[w])) best = w;
  }
  return best;
}

}  // namespace mmx::coordinator
