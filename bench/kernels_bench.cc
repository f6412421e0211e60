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

// STREAM-like read: sums a 1 GiB buffer split over the pool's threads. The figure the GEMV's
// GB/s is compared with; run with --benchmark_enable_random_interleaving so both see the same
// machine (on a shared VM the memory bandwidth drifts by tens of percent over minutes).
void BM_ReadBandwidth(benchmark::State& state) {
  const size_t n = (size_t{1} << 30) / sizeof(float);
  static std::vector<float>* buf = [&] {
    auto* b = new std::vector<float>(n);
    for (size_t i = 0; i < n; ++i) (*b)[i] = static_cast<float>(i & 7);
    return b;
  }();
  ThreadPool& pool = ThreadPool::Default();
  std::vector<float> sums(static_cast<size_t>(pool.num_threads()) * 16);
  for (auto _ : state) {
    pool.ParallelFor(static_cast<int64_t>(n), 1024, [&](int64_t begin, int64_t end) {
      const float* p = buf->data();
      // Eight independent accumulators, four cache lines per iteration: the loop issues loads
      // faster than memory can answer them, so only bandwidth limits it.
      __m256 a[8];
      for (auto& v : a) v = _mm256_setzero_ps();
      for (int64_t i = begin; i < end; i += 64)
        for (int j = 0; j < 8; ++j) a[j] = _mm256_add_ps(a[j], _mm256_loadu_ps(p + i + 8 * j));
      for (int j = 1; j < 8; ++j) a[0] = _mm256_add_ps(a[0], a[j]);
      float out[8];
      _mm256_storeu_ps(out, a[0]);
      sums[static_cast<size_t>(begin / 1024 % 16)] = out[0];
    });
    benchmark::DoNotOptimize(sums.data());
    benchmark::ClobberMemory();
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(n * sizeof(float)));
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
    ->ArgsProduct({{2048}, {2048}, {1, 8, 32, 512}})
    ->ArgsProduct({{6144}, {2048}, {1, 8, 32, 512}})
    ->ArgsProduct({{32000}, {2048}, {1, 8, 32}})
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
