#include "kernels/cpu/cpu_features.h"

#include <atomic>

namespace mmx::kernels {
namespace {

Isa DetectIsa() {
  __builtin_cpu_init();
  // The AVX-512 files use F (arithmetic), BW/VL/DQ (16-bit shuffles, masks) and BF16.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bf16")) {
    return Isa::kAvx512;
  }
  return Isa::kAvx2;
}

// -1: no override; otherwise the Isa value.
std::atomic<int> g_override{-1};

}  // namespace

const char* IsaName(Isa isa) { return isa == Isa::kAvx512 ? "avx512" : "avx2"; }

Isa BestIsa() {
  static const Isa best = DetectIsa();
  return best;
}

Isa ActiveIsa() {
  const int o = g_override.load(std::memory_order_relaxed);
  return o < 0 ? BestIsa() : static_cast<Isa>(o);
}

void SetIsaOverride(Isa isa) {
  if (static_cast<int>(isa) > static_cast<int>(BestIsa())) isa = BestIsa();
  g_override.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void ClearIsaOverride() { g_override.store(-1, std::memory_order_relaxed); }

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out{Isa::kAvx2};
  if (BestIsa() == Isa::kAvx512) out.push_back(Isa::kAvx512);
  return out;
}

}  // namespace mmx::kernels
