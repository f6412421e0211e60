// Which SIMD level the CPU kernels run at. Every translation unit is built for the AVX2+FMA+F16C
// baseline; the *_avx512.cc files are entered only when CPUID reports AVX-512 (F, BW, VL, DQ and
// BF16), the *_amx.cc ones only when it also reports AMX (TILE and BF16) and the kernel lets this
// process use the tile data (Linux's ARCH_REQ_XCOMP_PERM). Each level includes the ones below.
// Tests and benchmarks may lower the level to exercise the lower paths on a machine that has more.
#pragma once

#include <vector>

namespace mmx::kernels {

enum class Isa { kAvx2, kAvx512, kAmx };

// Whether the active level includes AVX-512 (kAvx512 or kAmx).
bool Avx512Active();

const char* IsaName(Isa isa);

// The level the kernels use by default (detected once): the CPU's best; the environment
// variable MMX_ISA=avx2 or avx512 caps it.
Isa BestIsa();

// The best level this CPU can run, AMX included (what SupportedIsas and overrides reach).
Isa HardwareIsa();

// The level the kernels use now: BestIsa(), or the override if one is set.
Isa ActiveIsa();

// Makes the kernels use `isa` (clamped to HardwareIsa()). Not for concurrent use with running
// kernels: meant for tests and benchmarks.
void SetIsaOverride(Isa isa);
void ClearIsaOverride();

// Every level this CPU can run, lowest first.
std::vector<Isa> SupportedIsas();

// Sets an override for its lifetime.
class ScopedIsa {
 public:
  explicit ScopedIsa(Isa isa) { SetIsaOverride(isa); }
  ~ScopedIsa() { ClearIsaOverride(); }
  ScopedIsa(const ScopedIsa&) = delete;
  ScopedIsa& operator=(const ScopedIsa&) = delete;
};

}  // namespace mmx::kernels
