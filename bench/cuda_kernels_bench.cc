// mmx-bench-cuda: the CUDA launchers (kernels/cuda/kernels_cuda.h) at MiniMax-Text-01's decode
// shapes, against the device's peak HBM bandwidth and bf16 tensor peak.
//
//   mmx-bench-cuda [--hbm-gbs GB/s] [--tflops TFLOP/s] [--iters 20] [--warmup 3]
//
// Measured, each as the mean over --iters calls on one stream (CUDA events):
//  - Gemm of one expert's w1, [F = 9216, H = 6144] bf16 (MODEL.md §5: rows = outputs = 9216,
//    cols = inputs = 6144), at batch 1, 2, 4, 8, 16, 32, 64, 128, 256. Batches above 8 run both
//    the exact fp32 path (ceil(T / 8) passes over the weights) and the kBf16 cuBLAS path.
//  - LightningDecode of one layer, 64 heads x 128 (a 4 MiB fp32 state per sequence), batch 1, 8, 32.
//  - CausalAttentionDecode of one softmax layer, 64 query / 8 KV heads x 128, fp32 KV cache,
//    at 4k and 32k keys.
//  - Lightning prefill of one layer, 64 heads x 128, n = 4096 tokens of one sequence: the fp32
//    recurrence (LightningPrefill, CUDA cores, 4 n D^2 flops per head) and the block form on
//    tensor cores (LightningPrefillBlocked, kBf16; 4 n D (D + B) flops per head with B = 64: Q K^T
//    and A V as full B x B products, Q S0 and K^T V), with tokens/s.
// GB/s counts the bytes each call must move (weights once per pass, state read and written, K
// and V once, activations in and out); inputs larger than L2 rotate through enough copies that
// every call reads from HBM. Peak HBM is 2 x memory clock x bus width (cudaDevAttrMemoryClockRate,
// cudaDeviceProp::memoryBusWidth) unless --hbm-gbs is given; the bf16 dense tensor peak comes
// from --tflops, or a small table of known GPUs (printed as assumed). Exits 0 with one line on a
// machine without a GPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include <cuda_runtime_api.h>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/bf16.h"
#include "base/status_macros.h"
#include "kernels/cuda/cublas_handle.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/kernels_cuda.h"

namespace mmx::kernels::cuda {
namespace {

struct Options {
  double hbm_gbs = 0;  // 0: from the device's clock and bus width
  double tflops = 0;   // 0: from the table of known GPUs
  int iters = 20;
  int warmup = 3;
};

struct Device {
  std::string name;
  size_t l2_bytes = 0;
  double hbm_gbs = 0;
  double tflops = 0;  // 0: unknown
};

// Dense bf16 tensor-core peaks (TFLOP/s, no sparsity) from NVIDIA's data sheets.
double KnownBf16Tflops(const std::string& name) {
  if (name.find("H200") != std::string::npos) return 989.4;
  if (name.find("H100") != std::string::npos) return name.find("PCIe") != std::string::npos ? 756.0 : 989.4;
  if (name.find("A100") != std::string::npos) return 312.0;
  return 0;
}

absl::StatusOr<Device> Describe(const Options& options) {
  cudaDeviceProp prop;
  MMX_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&prop, 0));
  int mem_clock_khz = 0;
  MMX_CUDA_RETURN_IF_ERROR(cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, 0));
  Device d;
  d.name = prop.name;
  d.l2_bytes = static_cast<size_t>(prop.l2CacheSize);
  const double derived = 2.0 * mem_clock_khz * 1e3 * prop.memoryBusWidth / 8 / 1e9;
  d.hbm_gbs = options.hbm_gbs > 0 ? options.hbm_gbs : derived;
  d.tflops = options.tflops > 0 ? options.tflops : KnownBf16Tflops(d.name);
  std::printf("device: %s, %d SMs, L2 %.0f MiB, compute %d.%d\n", prop.name, prop.multiProcessorCount,
              d.l2_bytes / 1048576.0, prop.major, prop.minor);
  std::printf("peak HBM: %.0f GB/s (%s; derived %.0f GB/s from %d MHz x %d-bit)\n", d.hbm_gbs,
              options.hbm_gbs > 0 ? "--hbm-gbs" : "derived", derived, mem_clock_khz / 1000, prop.memoryBusWidth);
  if (d.tflops > 0) {
    std::printf("bf16 tensor peak: %.1f TFLOP/s (%s)\n", d.tflops,
                options.tflops > 0 ? "--tflops" : "assumed from the device name; override with --tflops");
  } else {
    std::printf("bf16 tensor peak: unknown for this device (pass --tflops)\n");
  }
  return d;
}

// Fills a device buffer with uniform [-1, 1) values (fp32, or bf16 when `bf16`), generated on
// the host in 16 MiB chunks.
absl::Status FillRandom(DeviceBuffer& buffer, bool bf16, uint32_t seed) {
  constexpr size_t kChunk = size_t{16} << 20;
  std::vector<char> chunk(kChunk);
  uint32_t state = seed * 2654435761u + 1;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / 8388608.f - 1.f;
  };
  if (bf16) {
    auto* p = reinterpret_cast<uint16_t*>(chunk.data());
    for (size_t i = 0; i < kChunk / 2; ++i) p[i] = FloatToBf16(next());
  } else {
    auto* p = reinterpret_cast<float*>(chunk.data());
    for (size_t i = 0; i < kChunk / 4; ++i) p[i] = next();
  }
  for (size_t offset = 0; offset < buffer.size(); offset += kChunk) {
    MMX_RETURN_IF_ERROR(buffer.CopyFromHost(chunk.data(), std::min(kChunk, buffer.size() - offset), offset));
  }
  return absl::OkStatus();
}

// Mean seconds per call of fn(i), i = 0, 1, ..., after `warmup` untimed calls.
absl::StatusOr<double> TimeIt(cudaStream_t stream, const Options& options,
                              const std::function<absl::Status(int)>& fn) {
  for (int i = 0; i < options.warmup; ++i) MMX_RETURN_IF_ERROR(fn(i));
  cudaEvent_t start, stop;
  MMX_CUDA_RETURN_IF_ERROR(cudaEventCreate(&start));
  MMX_CUDA_RETURN_IF_ERROR(cudaEventCreate(&stop));
  MMX_CUDA_RETURN_IF_ERROR(cudaEventRecord(start, stream));
  for (int i = 0; i < options.iters; ++i) MMX_RETURN_IF_ERROR(fn(options.warmup + i));
  MMX_CUDA_RETURN_IF_ERROR(cudaEventRecord(stop, stream));
  MMX_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(stop));
  float ms = 0;
  MMX_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, start, stop));
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return ms * 1e-3 / options.iters;
}

void Report(const Device& d, const char* kernel, const std::string& shape, const char* path, double seconds,
            double bytes, double flops, double tokens = 0) {
  const double gbs = bytes / seconds / 1e9;
  std::printf("%-20s %-26s %-22s %10.1f us %8.0f GB/s %6.1f%% HBM", kernel, shape.c_str(), path, seconds * 1e6, gbs,
              100 * gbs / d.hbm_gbs);
  if (flops > 0) {
    const double tflops = flops / seconds / 1e12;
    std::printf(" %8.2f TFLOP/s", tflops);
    if (d.tflops > 0) std::printf(" %6.2f%% bf16 peak", 100 * tflops / d.tflops);
  }
  if (tokens > 0) std::printf(" %8.2f Mtok/s", tokens / seconds / 1e6);
  std::printf("\n");
}

// Copies of an input of `bytes` so that cycling through them never hits in L2.
int CopiesFor(size_t bytes, const Device& d) {
  return static_cast<int>(std::clamp<size_t>((4 * d.l2_bytes + bytes - 1) / bytes, 2, 8));
}

absl::Status BenchGemm(const Device& d, const Options& options, cudaStream_t stream) {
  constexpr int64_t kRows = 9216, kCols = 6144, kMaxBatch = 256;  // w1: [F, H]
  const size_t w_bytes = static_cast<size_t>(kRows * kCols) * 2;
  const int copies = CopiesFor(w_bytes, d);
  MMX_ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::Allocate(w_bytes * copies, 0));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::Allocate(kMaxBatch * kCols * sizeof(float), 0));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::Allocate(kMaxBatch * kRows * sizeof(float), 0));
  MMX_RETURN_IF_ERROR(FillRandom(w, /*bf16=*/true, 1));
  MMX_RETURN_IF_ERROR(FillRandom(x, /*bf16=*/false, 2));
  MMX_ASSIGN_OR_RETURN(CublasHandle cublas, CublasHandle::Create());
  MMX_ASSIGN_OR_RETURN(DeviceBuffer workspace, DeviceBuffer::Allocate(kMaxBatch * kCols * 2, 0));
  std::printf("\nGemm, one expert's w1 [%ld, %ld] bf16, %d copies of %.0f MiB cycled\n", static_cast<long>(kRows),
              static_cast<long>(kCols), copies, w_bytes / 1048576.0);
  for (int64_t batch : {1, 2, 4, 8, 16, 32, 64, 128, 256}) {
    const std::string shape = "9216x6144 T=" + std::to_string(batch);
    const double flops = 2.0 * batch * kRows * kCols;
    const double act_bytes = static_cast<double>(batch) * (kCols + kRows) * sizeof(float);
    for (ActivationPrecision precision : {ActivationPrecision::kFp32, ActivationPrecision::kBf16}) {
      if (precision == ActivationPrecision::kBf16 && batch <= kMaxGemvTokens) continue;
      GemmOptions gemm;
      gemm.precision = precision;
      gemm.cublas = cublas.get();
      gemm.workspace = workspace.data();
      gemm.workspace_bytes = workspace.size();
      MMX_ASSIGN_OR_RETURN(const double seconds, TimeIt(stream, options, [&](int i) {
                             const WeightView view{w.as<char>() + (i % copies) * w_bytes, DType::kBF16, kRows, kCols};
                             return Gemm(x.as<float>(), batch, view, y.as<float>(), stream, gemm);
                           }));
      const int64_t passes = precision == ActivationPrecision::kFp32 ? (batch + kMaxGemvTokens - 1) / kMaxGemvTokens : 1;
      const double bytes = static_cast<double>(w_bytes) * passes + act_bytes;
      const std::string path = precision == ActivationPrecision::kFp32
                                   ? "fp32 exact, " + std::to_string(passes) + (passes == 1 ? " pass" : " passes")
                                   : "bf16 x, cuBLAS";
      Report(d, "Gemm", shape, path.c_str(), seconds, bytes, flops);
    }
  }
  return absl::OkStatus();
}

// The same w1 as weight-only int8 (per-row fp32 scales): half the weight bytes. The fraction of
// HBM counts the bytes each pass really reads (int8 weights and scales, once per 32 tokens).
absl::Status BenchGemmInt8(const Device& d, const Options& options, cudaStream_t stream) {
  constexpr int64_t kRows = 9216, kCols = 6144, kMaxBatch = 64;
  const size_t w_bytes = static_cast<size_t>(kRows * kCols), s_bytes = kRows * sizeof(float);
  const int copies = CopiesFor(w_bytes, d);
  MMX_ASSIGN_OR_RETURN(DeviceBuffer w, DeviceBuffer::Allocate(w_bytes * copies, 0));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer scales, DeviceBuffer::Allocate(s_bytes * copies, 0));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer x, DeviceBuffer::Allocate(kMaxBatch * kCols * sizeof(float), 0));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer y, DeviceBuffer::Allocate(kMaxBatch * kRows * sizeof(float), 0));
  MMX_RETURN_IF_ERROR(FillRandom(w, /*bf16=*/true, 11));  // any bytes are valid int8
  MMX_RETURN_IF_ERROR(FillRandom(scales, /*bf16=*/false, 12));
  MMX_RETURN_IF_ERROR(FillRandom(x, /*bf16=*/false, 13));
  std::printf("\nGemm, one expert's w1 [%ld, %ld] int8 + fp32 row scales, %d copies of %.0f MiB cycled\n",
              static_cast<long>(kRows), static_cast<long>(kCols), copies, w_bytes / 1048576.0);
  for (int64_t batch : {1, 2, 4, 8, 16, 32, 64}) {
    const std::string shape = "9216x6144 T=" + std::to_string(batch);
    MMX_ASSIGN_OR_RETURN(const double seconds, TimeIt(stream, options, [&](int i) {
                           const WeightView view{w.as<char>() + (i % copies) * w_bytes, DType::kI8, kRows, kCols,
                                                 scales.as<const float>() + (i % copies) * kRows};
                           return Gemm(x.as<float>(), batch, view, y.as<float>(), stream);
                         }));
    const int64_t passes = (batch + 31) / 32;
    const double bytes = static_cast<double>(w_bytes + s_bytes) * passes +
                         static_cast<double>(batch) * (kCols + kRows) * sizeof(float);
    const std::string path = "int8 w, " + std::to_string(passes) + (passes == 1 ? " pass" : " passes");
    Report(d, "Gemm", shape, path.c_str(), seconds, bytes, 2.0 * batch * kRows * kCols);
  }
  return absl::OkStatus();
}

absl::Status BenchLightning(const Device& d, const Options& options, cudaStream_t stream) {
  constexpr int kHeads = 64, kDim = 128;
  const size_t state_bytes = size_t{kHeads} * kDim * kDim * sizeof(float);  // 4 MiB per sequence
  std::printf("\nLightningDecode, one layer: %d heads x %d, fp32 state %.0f MiB per sequence\n", kHeads, kDim,
              state_bytes / 1048576.0);
  for (int64_t batch : {1, 8, 32}) {
    // Enough slots that cycling through them never finds a state in L2.
    const int64_t num_slots = std::max<int64_t>(2 * batch, (4 * d.l2_bytes + state_bytes - 1) / state_bytes);
    MMX_ASSIGN_OR_RETURN(DeviceBuffer pool, DeviceBuffer::Allocate(state_bytes * num_slots, 0));
    MMX_RETURN_IF_ERROR(pool.Fill(0));
    // Round r uses slots (r * batch + j) % num_slots, j < batch: distinct within a round.
    std::vector<int32_t> slots(static_cast<size_t>(num_slots * batch));
    for (int64_t r = 0; r < num_slots; ++r)
      for (int64_t j = 0; j < batch; ++j) slots[r * batch + j] = static_cast<int32_t>((r * batch + j) % num_slots);
    MMX_ASSIGN_OR_RETURN(DeviceBuffer dslots, DeviceBuffer::Allocate(slots.size() * sizeof(int32_t), 0));
    MMX_RETURN_IF_ERROR(dslots.CopyFromHost(slots.data(), slots.size() * sizeof(int32_t)));
    MMX_ASSIGN_OR_RETURN(DeviceBuffer qkv, DeviceBuffer::Allocate(batch * kHeads * 3 * kDim * sizeof(float), 0));
    MMX_RETURN_IF_ERROR(FillRandom(qkv, /*bf16=*/false, 3));
    MMX_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::Allocate(batch * kHeads * kDim * sizeof(float), 0));
    std::vector<float> slopes(kHeads);
    for (int h = 0; h < kHeads; ++h) slopes[h] = std::pow(2.f, -(h + 1) / 8.f);  // layer 0 (MODEL.md §3.3)
    MMX_ASSIGN_OR_RETURN(DeviceBuffer dslopes, DeviceBuffer::Allocate(kHeads * sizeof(float), 0));
    MMX_RETURN_IF_ERROR(dslopes.CopyFromHost(slopes.data(), kHeads * sizeof(float)));
    LightningDecodeParams p;
    p.shape = LightningShape{kHeads, kDim, dslopes.as<float>(), 256};
    p.qkv = qkv.as<float>();
    p.num_seqs = batch;
    p.state_pool = pool.as<float>();
    p.num_slots = num_slots;
    p.out = out.as<float>();
    MMX_ASSIGN_OR_RETURN(const double seconds, TimeIt(stream, options, [&](int i) {
                           LightningDecodeParams step = p;
                           step.slots = dslots.as<int32_t>() + (i % num_slots) * batch;
                           return LightningDecode(step, stream);
                         }));
    const double bytes = batch * (2.0 * state_bytes + kHeads * 4.0 * kDim * sizeof(float));
    const double flops = batch * 4.0 * kHeads * kDim * kDim;  // update (2) + output (2) per state element
    Report(d, "LightningDecode", "64x128 B=" + std::to_string(batch), "fp32 state", seconds, bytes, flops);
  }
  return absl::OkStatus();
}

absl::Status BenchLightningPrefill(const Device& d, const Options& options, cudaStream_t stream) {
  constexpr int kHeads = 64, kDim = 128, kBlock = 64;  // kBlock: LightningPrefillBlocked's B
  constexpr int64_t kTokens = 4096;
  const size_t state_bytes = size_t{kHeads} * kDim * kDim * sizeof(float);
  const size_t qkv_bytes = static_cast<size_t>(kTokens) * kHeads * 3 * kDim * sizeof(float);  // 384 MiB: past L2
  const size_t out_bytes = static_cast<size_t>(kTokens) * kHeads * kDim * sizeof(float);
  std::printf("\nLightning prefill, one layer: %d heads x %d, n = %ld tokens of one sequence\n", kHeads, kDim,
              static_cast<long>(kTokens));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer qkv, DeviceBuffer::Allocate(qkv_bytes, 0));
  MMX_RETURN_IF_ERROR(FillRandom(qkv, /*bf16=*/false, 6));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::Allocate(out_bytes, 0));
  MMX_ASSIGN_OR_RETURN(DeviceBuffer state, DeviceBuffer::Allocate(state_bytes, 0));
  std::vector<float> slopes(kHeads);
  for (int h = 0; h < kHeads; ++h) slopes[h] = std::pow(2.f, -(h + 1) / 8.f);  // layer 0 (MODEL.md §3.3)
  MMX_ASSIGN_OR_RETURN(DeviceBuffer dslopes, DeviceBuffer::Allocate(kHeads * sizeof(float), 0));
  MMX_RETURN_IF_ERROR(dslopes.CopyFromHost(slopes.data(), kHeads * sizeof(float)));
  const LightningShape shape{kHeads, kDim, dslopes.as<float>(), 256};
  const double bytes = static_cast<double>(qkv_bytes) + out_bytes + 2.0 * state_bytes;
  const std::string label = "64x128 n=" + std::to_string(kTokens);
  for (const bool blocked : {false, true}) {
    // Each call continues from the state the previous one left; with every decay below 1 it stays bounded.
    MMX_RETURN_IF_ERROR(state.Fill(0));
    MMX_ASSIGN_OR_RETURN(const double seconds, TimeIt(stream, options, [&](int) {
                           return blocked ? LightningPrefillBlocked(shape, qkv.as<float>(), kTokens, state.as<float>(),
                                                                    out.as<float>(), stream)
                                          : LightningPrefill(shape, qkv.as<float>(), kTokens, state.as<float>(),
                                                             out.as<float>(), stream);
                         }));
    const double flops = blocked ? 4.0 * kHeads * kTokens * kDim * (kDim + kBlock)  // block form, B = 64
                                 : 4.0 * kHeads * kTokens * kDim * kDim;            // recurrence
    Report(d, blocked ? "LightningPrefillBlk" : "LightningPrefill", label,
           blocked ? "bf16 tensor, B=64" : "fp32 recurrence", seconds, bytes, flops, kTokens);
  }
  return absl::OkStatus();
}

absl::Status BenchAttention(const Device& d, const Options& options, cudaStream_t stream) {
  const AttentionShape shape{64, 8, 128, 0.08838834764831845f};
  std::printf("\nCausalAttentionDecode, one softmax layer: 64 query / 8 KV heads x 128, fp32 KV cache\n");
  for (int64_t len : {4096, 32768}) {
    const size_t kv_bytes = static_cast<size_t>(len) * shape.num_kv_heads * shape.head_dim * sizeof(float);
    const int copies = CopiesFor(2 * kv_bytes, d);
    MMX_ASSIGN_OR_RETURN(DeviceBuffer kv, DeviceBuffer::Allocate(2 * kv_bytes * copies, 0));
    MMX_RETURN_IF_ERROR(FillRandom(kv, /*bf16=*/false, 4));
    MMX_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::Allocate(shape.num_heads * shape.head_dim * sizeof(float), 0));
    MMX_RETURN_IF_ERROR(FillRandom(q, /*bf16=*/false, 5));
    MMX_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::Allocate(q.size(), 0));
    const size_t ws_bytes = CausalAttentionDecodeWorkspaceBytes(shape, len);
    MMX_ASSIGN_OR_RETURN(DeviceBuffer workspace, DeviceBuffer::Allocate(ws_bytes, 0));
    MMX_ASSIGN_OR_RETURN(const double seconds, TimeIt(stream, options, [&](int i) {
                           const char* base = kv.as<char>() + (i % copies) * 2 * kv_bytes;
                           CausalAttentionDecodeParams p;
                           p.shape = shape;
                           p.q = q.as<float>();
                           p.k = reinterpret_cast<const float*>(base);
                           p.v = reinterpret_cast<const float*>(base + kv_bytes);
                           p.total_len = len;
                           p.out = out.as<float>();
                           p.workspace = workspace.data();
                           p.workspace_bytes = ws_bytes;
                           return CausalAttentionDecode(p, stream);
                         }));
    const double bytes = 2.0 * kv_bytes + 2.0 * q.size() + 2.0 * ws_bytes;
    const double flops = 4.0 * shape.num_heads * shape.head_dim * len;  // q k^T and p v
    Report(d, "AttentionDecode", "64/8x128 n=" + std::to_string(len), "fp32 KV, split-K", seconds, bytes, flops);
  }
  return absl::OkStatus();
}

// The same decode over a paged bf16 cache, as workers hold it (pages of 64 rows, read through a
// device page table): half the bytes of the fp32 cache.
absl::Status BenchPagedAttention(const Device& d, const Options& options, cudaStream_t stream) {
  const AttentionShape shape{64, 8, 128, 0.08838834764831845f};
  constexpr int64_t kPageRows = 64;
  std::printf("\nCausalAttentionDecode over bf16 pages of %ld rows, one softmax layer\n", static_cast<long>(kPageRows));
  for (int64_t len : {4096, 32768}) {
    const size_t kv_bytes = static_cast<size_t>(len) * shape.num_kv_heads * shape.head_dim * 2;  // bf16
    const int copies = CopiesFor(2 * kv_bytes, d);
    MMX_ASSIGN_OR_RETURN(DeviceBuffer kv, DeviceBuffer::Allocate(2 * kv_bytes * copies, 0));
    MMX_RETURN_IF_ERROR(FillRandom(kv, /*bf16=*/true, 6));
    const int64_t pages = len / kPageRows;
    const size_t page_bytes = kv_bytes / pages;
    std::vector<const void*> table(static_cast<size_t>(2 * pages * copies));  // per copy: K pages, then V pages
    for (int c = 0; c < copies; ++c) {
      for (int64_t p = 0; p < 2 * pages; ++p) table[c * 2 * pages + p] = kv.as<char>() + c * 2 * kv_bytes + p * page_bytes;
    }
    MMX_ASSIGN_OR_RETURN(DeviceBuffer tables, DeviceBuffer::Allocate(table.size() * sizeof(void*), 0));
    MMX_RETURN_IF_ERROR(tables.CopyFromHost(table.data(), table.size() * sizeof(void*)));
    MMX_ASSIGN_OR_RETURN(DeviceBuffer q, DeviceBuffer::Allocate(shape.num_heads * shape.head_dim * sizeof(float), 0));
    MMX_RETURN_IF_ERROR(FillRandom(q, /*bf16=*/false, 7));
    MMX_ASSIGN_OR_RETURN(DeviceBuffer out, DeviceBuffer::Allocate(q.size(), 0));
    const size_t ws_bytes = CausalAttentionDecodeWorkspaceBytes(shape, len);
    MMX_ASSIGN_OR_RETURN(DeviceBuffer workspace, DeviceBuffer::Allocate(ws_bytes, 0));
    MMX_ASSIGN_OR_RETURN(const double seconds, TimeIt(stream, options, [&](int i) {
                           const void* const* base = tables.as<const void* const>() + (i % copies) * 2 * pages;
                           CausalAttentionDecodeParams p;
                           p.shape = shape;
                           p.q = q.as<float>();
                           p.paged.k_pages = base;
                           p.paged.v_pages = base + pages;
                           p.paged.page_rows = kPageRows;
                           p.paged.dtype = DType::kBF16;
                           p.total_len = len;
                           p.out = out.as<float>();
                           p.workspace = workspace.data();
                           p.workspace_bytes = ws_bytes;
                           return CausalAttentionDecode(p, stream);
                         }));
    const double bytes = 2.0 * kv_bytes + 2.0 * q.size() + 2.0 * ws_bytes;
    const double flops = 4.0 * shape.num_heads * shape.head_dim * len;
    Report(d, "AttentionDecode", "64/8x128 n=" + std::to_string(len), "bf16 KV pages", seconds, bytes, flops);
  }
  return absl::OkStatus();
}

absl::Status Run(const Options& options) {
  MMX_ASSIGN_OR_RETURN(const int count, DeviceCount());
  if (count == 0) {
    std::printf("mmx-bench-cuda: no CUDA device (or no driver) on this machine; nothing to measure\n");
    return absl::OkStatus();
  }
  MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(0));
  MMX_ASSIGN_OR_RETURN(const Device d, Describe(options));
  cudaStream_t stream;
  MMX_CUDA_RETURN_IF_ERROR(cudaStreamCreate(&stream));
  MMX_RETURN_IF_ERROR(BenchGemm(d, options, stream));
  MMX_RETURN_IF_ERROR(BenchGemmInt8(d, options, stream));
  MMX_RETURN_IF_ERROR(BenchLightning(d, options, stream));
  MMX_RETURN_IF_ERROR(BenchLightningPrefill(d, options, stream));
  MMX_RETURN_IF_ERROR(BenchAttention(d, options, stream));
  MMX_RETURN_IF_ERROR(BenchPagedAttention(d, options, stream));
  MMX_CUDA_RETURN_IF_ERROR(cudaStreamDestroy(stream));
  return absl::OkStatus();
}

}  // namespace
}  // namespace mmx::kernels::cuda

int main(int argc, char** argv) {
  mmx::kernels::cuda::Options options;
  CLI::App app{"mmx-bench-cuda: CUDA kernels at MiniMax-Text-01 decode shapes vs peak HBM and bf16 tensor peak"};
  app.add_option("--hbm-gbs", options.hbm_gbs, "peak HBM bandwidth in GB/s (default: from the device)");
  app.add_option("--tflops", options.tflops, "bf16 dense tensor peak in TFLOP/s (default: known GPUs)");
  app.add_option("--iters", options.iters, "timed calls per measurement")->check(CLI::PositiveNumber);
  app.add_option("--warmup", options.warmup, "untimed calls first")->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  const absl::Status status = mmx::kernels::cuda::Run(options);
  if (!status.ok()) {
    std::fprintf(stderr, "mmx-bench-cuda: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}
