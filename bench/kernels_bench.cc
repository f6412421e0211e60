// mmx_kernels_bench: Google Benchmark figures for the CPU kernels, beside a read-bandwidth
// reference measured in the same process, so a memory-bound kernel's GB/s can be read as a
// fraction of what the machine can stream.
//
//   mmx_kernels_bench [--mmx_threads=N] [--mmx_isa=avx2|avx512] [benchmark flags]
//   e.g. --benchmark_repetitions=5 --benchmark_enable_random_interleaving=true
//        --benchmark_report_aggregates_only=true
//
// --mmx_threads sets ThreadPool::Default()'s size (default: all CPUs); run once with 1 and once
// with 2 to see scaling. Gemm benchmarks cycle through enough copies of the weight matrix to
// exceed the L3 cache, so every call reads its weights from DRAM, as decode does. Counters:
// bytes_per_second = weight bytes read per call (SetBytesProcessed); FLOPS = 2*rows*cols*tokens.
#include <immintrin.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/bf16.h"
#include "base/thread_pool.h"
#include "benchmark/benchmark.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {

// Enough distinct bytes that nothing survives in the 32 MiB L3 between two reads of a copy.
constexpr size_t kColdBytes = size_t{256} << 20;

std::vector<uint16_t> RandomBf16(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<uint16_t> v(n);
  for (auto& x : v) x = FloatToBf16(dist(rng));
  return v;
}

// Sums `bytes` bytes at p over the pool's threads: the STREAM-like read kernel. Eight
// independent accumulators, four cache lines per iteration: the loop issues loads faster than
// memory answers them, so only bandwidth limits it.
float ReadSum(const void* data, size_t bytes) {
  const float* p = static_cast<const float*>(data);
  const int64_t n = static_cast<int64_t>(bytes / sizeof(float)) / 64 * 64;
  ThreadPool& pool = ThreadPool::Default();
  std::vector<float> sums(static_cast<size_t>(pool.num_threads()) * 16, 0.f);
  pool.ParallelFor(n, 1024, [&](int64_t begin, int64_t end) {
    __m256 a[8];
    for (auto& v : a) v = _mm256_setzero_ps();
    for (int64_t i = begin; i < end; i += 64)
      for (int j = 0; j < 8; ++j) a[j] = _mm256_add_ps(a[j], _mm256_loadu_ps(p + i + 8 * j));
    for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
    float out[8];
    _mm256_storeu_ps(out, a[0]);
    sums[static_cast<size_t>(begin / 1024 % 16)] = out[0];
  });
  float total = 0;
  for (float v : sums) total += v;
  return total;
}

// STREAM-like read of a 1 GiB buffer: the machine's read bandwidth, for reference.
void BM_ReadBandwidth(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  static std::vector<float>* buf = [&] {
    auto* b = new std::vector<float>(bytes / sizeof(float));
    for (size_t i = 0; i < b->size(); ++i) (*b)[i] = static_cast<float>(i & 7);
    return b;
  }();
  for (auto _ : state) benchmark::DoNotOptimize(ReadSum(buf->data(), bytes));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
}
BENCHMARK(BM_ReadBandwidth)->Unit(benchmark::kMillisecond)->UseRealTime()->MinTime(1.0);

// Gemm with bf16 weights [rows, cols] and `tokens` fp32 activation rows.
void BM_GemmBf16(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), tokens = state.range(2);
  const size_t matrix = static_cast<size_t>(rows * cols);
  const size_t copies = std::max<size_t>(1, kColdBytes / (matrix * 2) + 1);
  const std::vector<uint16_t> w = RandomBf16(matrix * copies, 1);
  std::vector<float> x(static_cast<size_t>(tokens * cols), 0.5f), y(static_cast<size_t>(tokens * rows));
  size_t c = 0;
  for (auto _ : state) {
    const WeightView view{w.data() + matrix * c, DType::kBF16, rows, cols};
    Gemm(x.data(), tokens, view, y.data());
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(matrix * 2));
  state.counters["FLOPS"] = benchmark::Counter(static_cast<double>(2 * matrix * tokens) * state.iterations(),
                                               benchmark::Counter::kIsRate);
}
// The benchmark model's decode shapes: expert / square 2048x2048, fused qkv 6144x2048,
// lm_head 32000x2048; decode batches 1, 8, 32 and a 512-token prefill.
BENCHMARK(BM_GemmBf16)
    ->ArgNames({"rows", "cols", "tokens"})
    ->ArgsProduct({{2048}, {2048}, {1, 2, 4, 8, 16, 32, 512}})
    ->ArgsProduct({{6144}, {2048}, {1, 8, 32, 512}})
    ->ArgsProduct({{32000}, {2048}, {1, 8, 32}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// GEMV (one token) and the read kernel alternately over the same weight copies, so both see the
// same pages and the same moment of a shared machine's memory bandwidth (which drifts by tens of
// percent over minutes). Counters: gemv_GBps, read_GBps and their ratio, gemv_of_read.
void BM_GemvVsRead(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const size_t matrix = static_cast<size_t>(rows * cols);
  // Even copies for the GEMV, odd ones for the read, each set larger than the L3 on its own, so
  // neither finds the other's lines in cache.
  const size_t pairs = kColdBytes / (matrix * 2) + 1;
  const std::vector<uint16_t> w = RandomBf16(matrix * 2 * pairs, 2);
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  double gemv_s = 0, read_s = 0;
  size_t c = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Gemm(x.data(), 1, WeightView{w.data() + matrix * (2 * c), DType::kBF16, rows, cols}, y.data());
    const auto t1 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(ReadSum(w.data() + matrix * (2 * c + 1), matrix * 2));
    const auto t2 = std::chrono::steady_clock::now();
    gemv_s += std::chrono::duration<double>(t1 - t0).count();
    read_s += std::chrono::duration<double>(t2 - t1).count();
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % pairs;
  }
  const double bytes = static_cast<double>(matrix * 2) * state.iterations();
  state.counters["gemv_GBps"] = bytes / gemv_s / 1e9;
  state.counters["read_GBps"] = bytes / read_s / 1e9;
  state.counters["gemv_of_read"] = read_s / gemv_s;
}
BENCHMARK(BM_GemvVsRead)
    ->ArgNames({"rows", "cols"})
    ->Args({2048, 2048})
    ->Args({6144, 2048})
    ->Args({32000, 2048})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// Lightning attention decode (n = 1) at 16 heads x 128: reads and writes the 1 MiB state once.
// `cold` cycles through 64 states (64 MiB) so each step's state comes from DRAM, as it does in a
// model whose layers' states together exceed the cache.
void BM_LightningDecode(benchmark::State& state) {
  const int heads = 16, dim = 128;
  const bool cold = state.range(0) != 0;
  const size_t num_states = cold ? 64 : 1;
  const size_t state_size = static_cast<size_t>(heads) * dim * dim;
  std::vector<float> slopes(heads);
  for (int h = 0; h < heads; ++h) slopes[h] = std::exp2(-0.5f * (h + 1));
  std::vector<float> states(state_size * num_states, 0.01f), qkv(static_cast<size_t>(heads) * 3 * dim, 0.1f),
      out(static_cast<size_t>(heads) * dim);
  const LightningShape shape{heads, dim, slopes.data(), 256};
  size_t c = 0;
  for (auto _ : state) {
    LightningAttention(shape, qkv.data(), 1, states.data() + state_size * c, out.data());
    benchmark::DoNotOptimize(out.data());
    c = (c + 1) % num_states;
  }
  // Bytes moved: the state read and written once.
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(state_size * 8));
}
BENCHMARK(BM_LightningDecode)->ArgName("cold")->Arg(0)->Arg(1)->Unit(benchmark::kMicrosecond)->UseRealTime();

// Lightning prefill (block form) of n tokens at 16 heads x 128, block 256, from a zero state.
void BM_LightningPrefill(benchmark::State& state) {
  const int heads = 16, dim = 128;
  const int64_t n = state.range(0);
  std::vector<float> slopes(heads);
  for (int h = 0; h < heads; ++h) slopes[h] = std::exp2(-0.5f * (h + 1));
  std::vector<float> st(static_cast<size_t>(heads) * dim * dim), qkv(static_cast<size_t>(n * heads * 3 * dim), 0.1f),
      out(static_cast<size_t>(n * heads * dim));
  const LightningShape shape{heads, dim, slopes.data(), 256};
  for (auto _ : state) {
    std::fill(st.begin(), st.end(), 0.f);
    LightningAttention(shape, qkv.data(), n, st.data(), out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["tokens_per_second"] =
      benchmark::Counter(static_cast<double>(n) * state.iterations(), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_LightningPrefill)->ArgName("n")->Arg(512)->Arg(2048)->Unit(benchmark::kMillisecond)->UseRealTime();

// Softmax attention of the benchmark model's shape (16 query heads, 2 KV heads, D = 128):
// n new queries against a cache of total_len rows. bytes_per_second counts one read of K and V.
void BM_CausalAttention(benchmark::State& state) {
  const int64_t n = state.range(0), total = state.range(1);
  const AttentionShape shape{16, 2, 128, 1.f / std::sqrt(128.f)};
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<float> q(static_cast<size_t>(n * 16 * 128)), k(static_cast<size_t>(total * 2 * 128)), v(k.size()),
      out(q.size());
  for (auto* vec : {&q, &k, &v})
    for (float& f : *vec) f = dist(rng);
  for (auto _ : state) {
    CausalAttention(shape, q.data(), n, k.data(), v.data(), total, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * total * 2 * 128 * 4 * 2);
}
BENCHMARK(BM_CausalAttention)
    ->ArgNames({"n", "total"})
    ->Args({1, 4096})
    ->Args({8, 4096})
    ->Args({512, 512})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// The same over a paged cache as sequences hold it (pages of 64 rows; arg 2: 0 fp32, 1 bf16),
// cycling through enough sequences' caches that each is read from DRAM, as a decode batch is.
// bytes_per_second counts one read of K and V in the cache's dtype.
void BM_CausalAttentionPaged(benchmark::State& state) {
  const int64_t n = state.range(0), total = state.range(1);
  const DType dtype = state.range(2) == 1 ? DType::kBF16 : DType::kF32;
  constexpr int64_t kPage = 64, kWidth = 2 * 128;
  const AttentionShape shape{16, 2, 128, 1.f / std::sqrt(128.f)};
  const int64_t pages = (total + kPage - 1) / kPage;
  const size_t page_bytes = static_cast<size_t>(kPage * kWidth) * DTypeSize(dtype);
  const int64_t copies = std::max<int64_t>(1, static_cast<int64_t>(kColdBytes / (2 * pages * page_bytes)));
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> dist(-1.f, 1.f);
  std::vector<std::vector<char>> storage;
  std::vector<std::vector<const void*>> keys(copies), values(copies);
  for (int64_t c = 0; c < copies; ++c) {
    for (auto* table : {&keys[c], &values[c]}) {
      for (int64_t p = 0; p < pages; ++p) {
        std::vector<char>& page = storage.emplace_back(page_bytes);
        for (int64_t i = 0; i < kPage * kWidth; ++i) {
          const float x = dist(rng);
          if (dtype == DType::kBF16) {
            const uint16_t b = FloatToBf16(x);
            std::memcpy(page.data() + i * 2, &b, 2);
          } else {
            std::memcpy(page.data() + i * 4, &x, 4);
          }
        }
        table->push_back(page.data());
      }
    }
  }
  std::vector<float> q(static_cast<size_t>(n * 16 * 128)), out(q.size());
  for (float& f : q) f = dist(rng);
  int64_t i = 0;
  for (auto _ : state) {
    KvCacheView view;
    view.dtype = dtype;
    view.block_tokens = kPage;
    view.key_blocks = keys[i % copies].data();
    view.value_blocks = values[i % copies].data();
    ++i;
    CausalAttention(shape, q.data(), n, view, total, out.data());
    benchmark::DoNotOptimize(out.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * total * kWidth * 2 *
                          static_cast<int64_t>(DTypeSize(dtype)));
}
BENCHMARK(BM_CausalAttentionPaged)
    ->ArgNames({"n", "total", "bf16"})
    ->Args({1, 4096, 0})
    ->Args({1, 4096, 1})
    ->Args({8, 4096, 0})
    ->Args({8, 4096, 1})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// ---- int8 experts: the I8 Gemm (weight-only, per-row scales) against bf16 ----

std::vector<int8_t> RandomInt8(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> dist(-127, 127);
  std::vector<int8_t> v(n);
  for (auto& x : v) x = static_cast<int8_t>(dist(rng));
  return v;
}

// Gemm with I8 weights [rows, cols] (+ one fp32 scale per row) and `tokens` fp32 activation rows.
// bytes_per_second counts the int8 weights and the scales.
void BM_GemmInt8(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1), tokens = state.range(2);
  const size_t matrix = static_cast<size_t>(rows * cols);
  const size_t copies = std::max<size_t>(1, kColdBytes / matrix + 1);
  const std::vector<int8_t> w = RandomInt8(matrix * copies, 1);
  const std::vector<float> scales(static_cast<size_t>(rows) * copies, 1.f / 127);
  std::vector<float> x(static_cast<size_t>(tokens * cols), 0.5f), y(static_cast<size_t>(tokens * rows));
  size_t c = 0;
  for (auto _ : state) {
    const WeightView view{w.data() + matrix * c, DType::kI8, rows, cols, scales.data() + rows * c};
    Gemm(x.data(), tokens, view, y.data());
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(matrix + rows * 4));
  state.counters["FLOPS"] = benchmark::Counter(static_cast<double>(2 * matrix * tokens) * state.iterations(),
                                               benchmark::Counter::kIsRate);
}
// The medium model's expert shape (2048 x 2048) at decode batches 1, 8, 32 and a 512-token prefill.
BENCHMARK(BM_GemmInt8)
    ->ArgNames({"rows", "cols", "tokens"})
    ->ArgsProduct({{2048}, {2048}, {1, 2, 4, 8, 16, 32, 512}})
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();

// One-token GEMV with I8 weights, with bf16 weights of the same shape and the read kernel, in turn
// over cold copies (the same moment of a shared machine's bandwidth, see BM_GemvVsRead). The read
// kernel takes the bf16 copy half a cycle away, so neither GEMV finds its copy in the L3.
// Counters: int8_GBps and bf16_GBps (each its own bytes), read_GBps, and int8_speedup = bf16
// time / int8 time: the point of int8 decode is ~2x, half the bytes at the same GB/s.
void BM_GemvInt8VsBf16(benchmark::State& state) {
  const int64_t rows = state.range(0), cols = state.range(1);
  const size_t matrix = static_cast<size_t>(rows * cols);
  const size_t copies = std::max<size_t>(4, kColdBytes / (matrix * 3) + 1);
  const std::vector<int8_t> q = RandomInt8(matrix * copies, 3);
  const std::vector<float> scales(static_cast<size_t>(rows) * copies, 1.f / 127);
  const std::vector<uint16_t> b = RandomBf16(matrix * copies, 4);
  std::vector<float> x(static_cast<size_t>(cols), 0.5f), y(static_cast<size_t>(rows));
  double int8_s = 0, bf16_s = 0, read_s = 0;
  size_t c = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Gemm(x.data(), 1, WeightView{q.data() + matrix * c, DType::kI8, rows, cols, scales.data() + rows * c}, y.data());
    const auto t1 = std::chrono::steady_clock::now();
    Gemm(x.data(), 1, WeightView{b.data() + matrix * c, DType::kBF16, rows, cols}, y.data());
    const auto t2 = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(ReadSum(b.data() + matrix * ((c + copies / 2) % copies), matrix * 2));
    const auto t3 = std::chrono::steady_clock::now();
    int8_s += std::chrono::duration<double>(t1 - t0).count();
    bf16_s += std::chrono::duration<double>(t2 - t1).count();
    read_s += std::chrono::duration<double>(t3 - t2).count();
    benchmark::DoNotOptimize(y.data());
    c = (c + 1) % copies;
  }
  const double n = static_cast<double>(state.iterations());
  state.counters["int8_GBps"] = static_cast<double>(matrix + rows * 4) * n / int8_s / 1e9;
  state.counters["bf16_GBps"] = static_cast<double>(matrix * 2) * n / bf16_s / 1e9;
  state.counters["read_GBps"] = static_cast<double>(matrix * 2) * n / read_s / 1e9;
  state.counters["int8_speedup"] = bf16_s / int8_s;
}
BENCHMARK(BM_GemvInt8VsBf16)->ArgNames({"rows", "cols"})->Args({2048, 2048})->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
}  // namespace mmx::kernels

// Strips the --mmx_* flags, applies them, and hands the rest to Google Benchmark.
int main(int argc, char** argv) {
  std::vector<char*> rest;
  for (int i = 0; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--mmx_threads=", 0) == 0) {
      mmx::ThreadPool::SetDefaultThreads(std::atoi(arg.c_str() + 14));
    } else if (arg == "--mmx_isa=avx2") {
      mmx::kernels::SetIsaOverride(mmx::kernels::Isa::kAvx2);
    } else if (arg == "--mmx_isa=avx512") {
      mmx::kernels::SetIsaOverride(mmx::kernels::Isa::kAvx512);
    } else if (arg == "--mmx_isa=amx") {
      mmx::kernels::SetIsaOverride(mmx::kernels::Isa::kAmx);
    } else if (arg == "--mmx_activations=bf16") {
      // The calling thread's precision: every benchmark runs on it.
      static mmx::kernels::ScopedActivationPrecision bf16(mmx::kernels::ActivationPrecision::kBf16);
      benchmark::AddCustomContext("mmx_activations", "bf16");
    } else {
      rest.push_back(argv[i]);
    }
  }
  int rest_argc = static_cast<int>(rest.size());
  benchmark::Initialize(&rest_argc, rest.data());
  benchmark::AddCustomContext("mmx_threads", std::to_string(mmx::ThreadPool::Default().num_threads()));
  benchmark::AddCustomContext("mmx_isa", mmx::kernels::IsaName(mmx::kernels::ActiveIsa()));
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
