#include "kernels/cpu/cpu_features.h"

#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace mmx::kernels {
namespace {

// AMX-TILE and AMX-BF16 in CPUID, and the kernel's permission for this process to use the tile
// data (off by default: its 8 KiB make every context switch's save area larger).
bool DetectAmx() {
  unsigned a = 0, b = 0, c = 0, d = 0;
  if (__get_cpuid_count(7, 0, &a, &b, &c, &d) == 0) return false;
  constexpr unsigned kAmxBf16 = 1u << 22, kAmxTile = 1u << 24;
  if ((d & kAmxBf16) == 0 || (d & kAmxTile) == 0) return false;
  constexpr long kArchReqXcompPerm = 0x1023;
  constexpr long kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
}

Isa DetectHardwareIsa() {
  __builtin_cpu_init();
  // The AVX-512 files use F (arithmetic), BW/VL/DQ (16-bit shuffles, masks) and BF16.
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("avx512bf16")) {
    return DetectAmx() ? Isa::kAmx : Isa::kAvx512;
  }
  return Isa::kAvx2;
}

// The level the kernels run at by default: the hardware's; MMX_ISA=avx2|avx512 caps it (AMX
// was opt-in until it had run on AMX hardware: docs/benchmarks.md, 2026-12-08).
Isa DetectIsa() {
  const Isa hardware = HardwareIsa();
  const char* cap = std::getenv("MMX_ISA");
  Isa limit = Isa::kAmx;
  if (cap != nullptr && std::strcmp(cap, "avx2") == 0) limit = Isa::kAvx2;
  if (cap != nullptr && std::strcmp(cap, "avx512") == 0) limit = Isa::kAvx512;
  return limit < hardware ? limit : hardware;
}

// -1: no override; otherwise the Isa value.
std::atomic<int> g_override{-1};

}  // namespace

const char* IsaName(Isa isa) {
  switch (isa) {
    case Isa::kAmx:
      return "amx";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAvx2:
      break;
  }
  return "avx2";
}

Isa HardwareIsa() {
  static const Isa hardware = DetectHardwareIsa();
  return hardware;
}

Isa BestIsa() {
  static const Isa best = DetectIsa();
  return best;
}

Isa ActiveIsa() {
  const int o = g_override.load(std::memory_order_relaxed);
  return o < 0 ? BestIsa() : static_cast<Isa>(o);
}

bool Avx512Active() { return ActiveIsa() >= Isa::kAvx512; }

void SetIsaOverride(Isa isa) {
  // Tests and benchmarks may reach every level the hardware has, AMX included.
  if (static_cast<int>(isa) > static_cast<int>(HardwareIsa())) isa = HardwareIsa();
  g_override.store(static_cast<int>(isa), std::memory_order_relaxed);
}

void ClearIsaOverride() { g_override.store(-1, std::memory_order_relaxed); }

std::vector<Isa> SupportedIsas() {
  std::vector<Isa> out{Isa::kAvx2};
  if (HardwareIsa() >= Isa::kAvx512) out.push_back(Isa::kAvx512);
  if (HardwareIsa() >= Isa::kAmx) out.push_back(Isa::kAmx);
  return out;
}

}  // namespace mmx::kernels
