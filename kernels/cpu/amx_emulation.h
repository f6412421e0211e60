// A software model of the AMX tile instructions gemm_amx.cc uses, for testing its layout and
// blocking on machines without AMX (tests/kernels/gemm_amx_emulated_test.cc). It follows the
// instruction set reference's definitions: palette-1 configuration, 8 tiles of up to 16 rows of
// 64 bytes, and TDPBF16PS summing, for each output element and each pair of the shared dimension,
// the two products of bf16 values widened to fp32 (exact), one rounded fp32 addition at a time.
// What it cannot show is real hardware: the kernel's speed, and AMX's flushing of denormals.
#pragma once

#include <cstdint>
#include <cstring>

namespace mmx::kernels::amx_emulation {

struct Tiles {
  uint8_t rows[8] = {};
  uint16_t colsb[8] = {};
  alignas(64) uint8_t data[8][16][64] = {};
};

inline Tiles& State() {
  thread_local Tiles tiles;
  return tiles;
}

inline float Widen(uint16_t bf16) {
  const uint32_t bits = static_cast<uint32_t>(bf16) << 16;
  float f;
  std::memcpy(&f, &bits, sizeof(f));
  return f;
}

inline void LoadConfig(const void* config) {
  const uint8_t* c = static_cast<const uint8_t*>(config);
  Tiles& t = State();
  for (int i = 0; i < 8; ++i) {
    std::memcpy(&t.colsb[i], c + 16 + 2 * i, 2);
    t.rows[i] = c[48 + i];
  }
}

inline void Load(int tile, const void* base, int64_t stride) {
  Tiles& t = State();
  for (int r = 0; r < t.rows[tile]; ++r) std::memcpy(t.data[tile][r], static_cast<const uint8_t*>(base) + r * stride, t.colsb[tile]);
}

inline void Store(int tile, void* base, int64_t stride) {
  Tiles& t = State();
  for (int r = 0; r < t.rows[tile]; ++r) std::memcpy(static_cast<uint8_t*>(base) + r * stride, t.data[tile][r], t.colsb[tile]);
}

inline void Zero(int tile) { std::memset(State().data[tile], 0, sizeof(State().data[tile])); }

// dst[m][n] += sum over pairs p of a[m][2p] * b[p][2n] + a[m][2p + 1] * b[p][2n + 1].
inline void DotBf16(int dst, int a, int b) {
  Tiles& t = State();
  const int M = t.rows[dst], N = t.colsb[dst] / 4, P = t.colsb[a] / 4;
  for (int m = 0; m < M; ++m) {
    float* out = reinterpret_cast<float*>(t.data[dst][m]);
    const uint16_t* am = reinterpret_cast<const uint16_t*>(t.data[a][m]);
    for (int p = 0; p < P; ++p) {
      const uint16_t* bp = reinterpret_cast<const uint16_t*>(t.data[b][p]);
      for (int n = 0; n < N; ++n) {
        out[n] += Widen(am[2 * p]) * Widen(bp[2 * n]);
        out[n] += Widen(am[2 * p + 1]) * Widen(bp[2 * n + 1]);
      }
    }
  }
}

}  // namespace mmx::kernels::amx_emulation

#define _tile_loadconfig(config) ::mmx::kernels::amx_emulation::LoadConfig(config)
#define _tile_loadd(tile, base, stride) ::mmx::kernels::amx_emulation::Load(tile, base, stride)
#define _tile_stored(tile, base, stride) ::mmx::kernels::amx_emulation::Store(tile, base, stride)
#define _tile_zero(tile) ::mmx::kernels::amx_emulation::Zero(tile)
#define _tile_dpbf16ps(dst, a, b) ::mmx::kernels::amx_emulation::DotBf16(dst, a, b)
#define _tile_release() ((void)0)
