// AMX tiles for BF16 weights (Isa::kAmx): the Gemm launcher (gemm.cc) packs the activations,
// shares out blocks of 16 weight rows and calls GemmRowsAmx on each. Internal to kernels/cpu.
//
// One TDPBF16PS multiplies a 16 x 32 bf16 tile of the weights (16 rows, read in place) by a
// 32 x 16 tile of activations (16 tokens) into 16 x 16 fp32 sums. The activations are bf16 pairs
// in the layout the instruction takes (AmxPackedActivations). With fp32 activations (the exact
// mode) each one is split into three bf16 parts, x = hi + mid + lo, which together hold its 24
// significant bits; the products of a bf16 weight with each part are exact in fp32, so three
// tile products per weight tile give the fp32 product sums, at a third of AMX's rate (still
// several times the fp32 FMA rate). With bf16 activations (ActivationPrecision::kBf16) one part,
// x rounded to bf16. A token's sums do not depend on the other tokens of the call: the same
// tiles, in the same order, whatever the batch.
#pragma once

#include <cstdint>
#include <vector>

namespace mmx::kernels::internal {

inline constexpr int64_t kAmxRows = 16;     // weight rows per tile
inline constexpr int64_t kAmxTokens = 16;   // tokens per activation tile
inline constexpr int64_t kAmxK = 32;        // bf16 columns per tile
inline constexpr int64_t kAmxTileElems = kAmxK * kAmxTokens;  // bf16 elements in one activation tile

// Activation tiles: tile (token block b, column chunk c, part p) at
// data + ((b * chunks + c) * parts + p) * kAmxTileElems; within it, row r (columns 2r and 2r+1 of
// the chunk), token j: the pair at [r * 32 + j * 2]. Zero where the tokens run out.
struct AmxPackedActivations {
  const uint16_t* data = nullptr;
  int64_t num_tokens = 0;
  int64_t token_blocks = 0;
  int64_t chunks = 0;   // cols / kAmxK
  int parts = 3;        // 3: fp32 split; 1: rounded to bf16
};

// x [num_tokens, cols] (cols a multiple of kAmxK) as activation tiles in `buf`: three parts per
// value with parts = 3 (hi = bf16(x), mid = bf16(x - hi), lo = bf16(x - hi - mid)), or x rounded
// to bf16 with parts = 1. Built for the baseline ISA.
AmxPackedActivations PackAmxActivations(const float* x, int64_t num_tokens, int64_t cols, int parts,
                                        std::vector<uint16_t>& buf);

}  // namespace mmx::kernels::internal

// The kernel. tests/kernels/gemm_amx_emulated_test.cc builds gemm_amx.cc a second time over a
// software model of the tiles (kernels/cpu/amx_emulation.h), in the namespace ...::emulated, to
// check its layout and blocking on machines without AMX.
#ifdef MMX_AMX_EMULATE
namespace mmx::kernels::internal::emulated {
#else
namespace mmx::kernels::internal {
#endif

// Rows [row_begin, row_end) of y [num_tokens, rows] = x · wᵀ, w BF16 [rows, cols] row-major with
// cols = x.chunks * kAmxK; row_begin a multiple of kAmxRows. A last block of fewer than 16 rows
// is read through `pad`, a caller-owned buffer of kAmxRows * cols bf16. Configures the tiles on
// the calling thread and releases them before returning.
void GemmRowsAmx(const AmxPackedActivations& x, const uint16_t* w, int64_t rows, float* y, int64_t row_begin,
                 int64_t row_end, uint16_t* pad);

}  // namespace mmx::kernels::internal
