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
// up to four token blocks, tile 4 the weights, tiles 5-7 the activation parts.
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

// Tile J += the weights (tile 4, loaded) x the parts of the activation tile at `tile`. Macros:
// GCC's tile intrinsics paste their register numbers into the assembly, so they must be literals.
#define MMX_AMX_MULTIPLY(J, tile, parts)                    \
  do {                                                      \
    _tile_loadd(5, (tile), 64);                             \
    _tile_dpbf16ps(J, 4, 5);                                \
    if ((parts) > 1) {                                      \
      _tile_loadd(6, (tile) + kAmxTileElems, 64);           \
      _tile_dpbf16ps(J, 4, 6);                              \
      _tile_loadd(7, (tile) + 2 * kAmxTileElems, 64);       \
      _tile_dpbf16ps(J, 4, 7);                              \
    }                                                       \
  } while (0)

// Token block b's sums, stored from tile J through `tmp` into y's rows of the block.
void Scatter(const float* tmp, int64_t b, int64_t num_tokens, int64_t rows, int64_t r0, int64_t valid_rows, float* y) {
  const int64_t t0 = b * kAmxTokens;
  const int64_t tokens = num_tokens - t0 < kAmxTokens ? num_tokens - t0 : kAmxTokens;
  for (int64_t j = 0; j < tokens; ++j) {
    float* out = y + (t0 + j) * rows + r0;
    for (int64_t m = 0; m < valid_rows; ++m) out[m] = tmp[m * kAmxTokens + j];
  }
}

// One block of 16 weight rows, every token: token blocks four at a time (tiles 0-3), each
// group passing over all the columns with the weight tile loaded once per chunk.
void RowBlock(const AmxPackedActivations& x, const uint16_t* w, int64_t stride_bytes, int64_t rows, int64_t r0,
              int64_t valid_rows, float* y) {
  alignas(64) float tmp[kAmxRows * kAmxTokens];
  const int64_t per_block = x.chunks * x.parts * kAmxTileElems;
  for (int64_t b0 = 0; b0 < x.token_blocks; b0 += 4) {
    const int64_t blocks = x.token_blocks - b0 < 4 ? x.token_blocks - b0 : 4;
    _tile_zero(0);
    _tile_zero(1);
    _tile_zero(2);
    _tile_zero(3);
    const uint16_t* act = x.data + b0 * per_block;
    for (int64_t c = 0; c < x.chunks; ++c) {
      _tile_loadd(4, w + c * kAmxK, stride_bytes);
      const uint16_t* tile = act + c * x.parts * kAmxTileElems;
      MMX_AMX_MULTIPLY(0, tile, x.parts);
      if (blocks > 1) MMX_AMX_MULTIPLY(1, tile + per_block, x.parts);
      if (blocks > 2) MMX_AMX_MULTIPLY(2, tile + 2 * per_block, x.parts);
      if (blocks > 3) MMX_AMX_MULTIPLY(3, tile + 3 * per_block, x.parts);
    }
    _tile_stored(0, tmp, 64);
    Scatter(tmp, b0, x.num_tokens, rows, r0, valid_rows, y);
    if (blocks > 1) {
      _tile_stored(1, tmp, 64);
      Scatter(tmp, b0 + 1, x.num_tokens, rows, r0, valid_rows, y);
    }
    if (blocks > 2) {
      _tile_stored(2, tmp, 64);
      Scatter(tmp, b0 + 2, x.num_tokens, rows, r0, valid_rows, y);
    }
    if (blocks > 3) {
      _tile_stored(3, tmp, 64);
      Scatter(tmp, b0 + 3, x.num_tokens, rows, r0, valid_rows, y);
    }
  }
}

#undef MMX_AMX_MULTIPLY

}  // namespace

void GemmRowsAmx(const AmxPackedActivations& x, const uint16_t* w, int64_t rows, float* y, int64_t row_begin,
                 int64_t row_end, uint16_t* pad) {
  const int64_t cols = x.chunks * kAmxK;
  ConfigureTiles();
  for (int64_t r0 = row_begin; r0 < row_end; r0 += kAmxRows) {
    const int64_t valid = row_end - r0 < kAmxRows ? row_end - r0 : kAmxRows;
    const uint16_t* block = w + r0 * cols;
    if (valid < kAmxRows) {  // the last rows: a tile must not read past the matrix
      std::memset(pad, 0, static_cast<size_t>(kAmxRows * cols) * sizeof(uint16_t));
      std::memcpy(pad, block, static_cast<size_t>(valid * cols) * sizeof(uint16_t));
      block = pad;
    }
    RowBlock(x, block, cols * static_cast<int64_t>(sizeof(uint16_t)), rows, r0, valid, y);
  }
  _tile_release();
}

}  // namespace mmx::kernels::internal (or ::emulated)
