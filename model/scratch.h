// Reusable per-thread activation buffers for the layer code. Each slot is resized on demand
// and never shrunk, so a steady decode loop allocates, and page-faults, nothing after its first
// step (fresh multi-MB vectors per kernel cost ~5% of decode time in page faults).
#pragma once

#include <array>
#include <cstddef>
#include <vector>

namespace mmx::model {

enum class Slot : int {
  kNormed,        // u [T, H]
  kAttnOut,       // a / y [T, H]
  kQkv,           // [T, 3*N*D]
  kHeads,         // o [T, N*D]
  kGate,          // [T, N*D]
  kQ, kK, kV,     // softmax projections
  kRouterLogits,  // [T, E]
  kMoeSum,        // m [T, H]
  kPairRows,      // inputs of (token, expert) pairs [T*K, H]
  kPairOut,       // their weighted outputs [T*K, H]
  kExpertRows,    // gathered rows [n, H]
  kExpertOut,     // [n, H]
  kFfnGate,       // [n, F]
  kFfnUp,         // [n, F]
  kTail,          // final-normed rows [rows, H]
  kCount
};

class Scratch {
 public:
  // A buffer of at least n floats for `slot`; contents unspecified. Valid until the next Get of
  // the same slot on this thread.
  float* Get(Slot slot, size_t n) {
    std::vector<float>& v = buffers_[static_cast<int>(slot)];
    if (v.size() < n) v.resize(n);
    return v.data();
  }
  static Scratch& ForThisThread() {
    thread_local Scratch scratch;
    return scratch;
  }

 private:
  std::array<std::vector<float>, static_cast<int>(Slot::kCount)> buffers_;
};

}  // namespace mmx::model
