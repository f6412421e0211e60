// The AMX row kernel (gemm_amx.h). Built with AMX and AVX-512 flags; entered only when
// ActiveIsa() is kAmx. Nothing here but the kernel: no inline code shared with other files, so
// no AMX instruction can stand in for a baseline build of it.
#include "kernels/cpu/gemm_amx.h"

#ifdef MMX_AMX_EMULATE
#include "kernels/cpu/amx_emulation.h"
#else
#include <immintrin.h>
#endif

#include <cstring>

#ifdef MMX_AMX_EMULATE
namespace mmx::kernels::internal::emulated {
#else
namespace mmx::kernels::internal {
#endif
namespace {

// The tile configuration (palette 1): every tile 16 rows of 64 bytes. Tiles 0-3 hold the sums of
// up to four blocks of 16 weight rows, tile 4 the weights, tiles 5-7 the activation parts.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void ConfigureTiles() {
  TileConfig config;
  for (int t = 0; t < 8; ++t) {
    config.colsb[t] = 64;
    config.rows[t] = 16;
  }
  _tile_loadconfig(&config);
}

// Row blocks handled together: each chunk's activation tiles are loaded once for all of them.
constexpr int kGroupBlocks = 4;

// Up to four blocks of 16 weight rows (block i at rows r0 + 16 i, its weights at w[i]) times
// every token, a token block at a time. Per chunk, the activation parts are loaded once (tiles
// 5-7) and each block's weight tile once (tile 4), then multiplied into its sums (tile i): a
// load per 1.7 products with three parts, where one token block per weight tile needed 1.3 loads
// per product and the loads, not the products, set the pace. A group's weights (256 KiB at
// 2048 columns) stay in L2 between token blocks.
struct RowGroup {
  const uint16_t* w[kGroupBlocks] = {};
  int64_t valid[kGroupBlocks] = {};  // rows of each block inside the matrix
  int blocks = 0;
  int64_t r0 = 0;
};

// Tile I += the weights of group block I (loaded into tile 4) x the activation parts (5-7).
// Macros: GCC's tile intrinsics paste their register numbers into the assembly, so they must be
// literals.
#define MMX_AMX_BLOCK(I, g, c, stride, parts)           \
  do {                                                  \
    _tile_loadd(4, (g).w[I] + (c) * kAmxK, (stride));   \
    _tile_dpbf16ps(I, 4, 5);                            \
    if ((parts) > 1) {                                  \
      _tile_dpbf16ps(I, 4, 6);                          \
      _tile_dpbf16ps(I, 4, 7);                          \
    }                                                   \
  } while (0)

// Token block b's sums of group block i, stored from its tile through `tmp` into y.
void Scatter(const float* tmp, int64_t b, int64_t num_tokens, int64_t rows, int64_t r0, int64_t valid_rows, float* y) {
  const int64_t t0 = b * kAmxTokens;
  const int64_t tokens = num_tokens - t0 < kAmxTokens ? num_tokens - t0 : kAmxTokens;
  for (int64_t j = 0; j < tokens; ++j) {
    float* out = y + (t0 + j) * rows + r0;
    for (int64_t m = 0; m < valid_rows; ++m) out[m] = tmp[m * kAmxTokens + j];
  }
}

void RunGroup(const AmxPackedActivations& x, const RowGroup& g, int64_t stride_bytes, int64_t rows, float* y) {
  alignas(64) float tmp[kAmxRows * kAmxTokens];
  const int64_t per_block = x.chunks * x.parts * kAmxTileElems;
  for (int64_t b = 0; b < x.token_blocks; ++b) {
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint16_t* act = x.data + b * per_block;
    for (int64_t c = 0; c < x.chunks; ++c) {
      const uint16_t* tile = act + c * x.parts * kAmxTileElems;
      _tile_loadd(5, tile, 64);
      if (x.parts > 1) {
        _tile_loadd(6, tile + kAmxTileElems, 64);
        _tile_loadd(7, tile + 2 * kAmxTileElems, 64);
      }
      MMX_AMX_BLOCK(0, g, c, stride_bytes, x.parts);
      if (g.blocks > 1) MMX_AMX_BLOCK(1, g, c, stride_bytes, x.parts);
      if (g.blocks > 2) MMX_AMX_BLOCK(2, g, c, stride_bytes, x.parts);
      if (g.blocks > 3) MMX_AMX_BLOCK(3, g, c, stride_bytes, x.parts);
    }
    _tile_stored(0, tmp, 64);
    Scatter(tmp, b, x.num_tokens, rows, g.r0, g.valid[0], y);
    if (g.blocks > 1) {
      _tile_stored(1, tmp, 64);
      Scatter(tmp, b, x.num_tokens, rows, g.r0 + kAmxRows, g.valid[1], y);
    }
    if (g.blocks > 2) {
      _tile_stored(2, tmp, 64);
      Scatter(tmp, b, x.num_tokens, rows, g.r0 + 2 * kAmxRows, g.valid[2], y);
    }
    if (g.blocks > 3) {
      _tile_stored(3, tmp, 64);
      Scatter(tmp, b, x.num_tokens, rows, g.r0 + 3 * kAmxRows, g.valid[3], y);
    }
  }
}

#undef MMX_AMX_BLOCK

}  // namespace

void GemmRowsAmx(const AmxPackedActivations& x, const uint16_t* w, int64_t rows, float* y, int64_t row_begin,
                 int64_t row_end, uint16_t* pad) {
  const int64_t cols = x.chunks * kAmxK;
  const int64_t stride_bytes = cols * static_cast<int64_t>(sizeof(uint16_t));
  ConfigureTiles();
  for (int64_t g0 = row_begin; g0 < row_end; g0 += kGroupBlocks * kAmxRows) {
    RowGroup g;
    g.r0 = g0;
    for (int64_t r0 = g0; r0 < row_end && g.blocks < kGroupBlocks; r0 += kAmxRows) {
      const int64_t valid = row_end - r0 < kAmxRows ? row_end - r0 : kAmxRows;
      const uint16_t* block = w + r0 * cols;
      if (valid < kAmxRows) {  // the last rows: a tile must not read past the matrix
        std::memset(pad, 0, static_cast<size_t>(kAmxRows * cols) * sizeof(uint16_t));
        std::memcpy(pad, block, static_cast<size_t>(valid * cols) * sizeof(uint16_t));
        block = pad;
      }
      g.w[g.blocks] = block;
      g.valid[g.blocks] = valid;
      ++g.blocks;
    }
    RunGroup(x, g, stride_bytes, rows, y);
  }
  _tile_release();
}

}  // namespace mmx::kernels::internal (or ::emulated)
