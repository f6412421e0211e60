// mmx-bench-decode: end-to-end CPU decode and prefill throughput of the engine in this process
// (engine/local_engine.h: one worker holding the whole model, driven by the scheduler, as
// `mmx-coord run` serves it), beside this machine's measured memory bandwidth (a STREAM triad
// run in the same process).
//
//   mmx-bench-decode --model DIR [--threads N] [--batches 1,8,32] [--steps 32] [--prefill 512]
//                    [--activations fp32|bf16] [--expert-dtype bf16|int8] [--context 16]
//                    [--kv-dtype bf16|fp32]
//
// For each batch size b: b sequences with a random prompt of --context tokens are prefilled (not
// timed; in chunks of up to 256, every sequence's chunk in each step), then
// `steps` decode steps run with all b sequences in each step (a first decode step is not timed:
// it pages in what the prefill did not touch). Reported: tokens/s (b * steps / time, each step
// timed by the scheduler from sending it to its tokens) and the achieved bandwidth, i.e. weight
// bytes actually read per step (each touched expert once, attention, router, lm_head, as the
// worker reports them) over step time, as a fraction of the triad. Then one prompt of --prefill tokens is prefilled and timed. Peak RSS is
// compared with the checkpoint's weight bytes (weights are mmap'ed, never copied; with
// --expert-dtype int8 the experts are int8 copies, made at load, whose bf16 pages are released,
// and weight bytes read count the int8 bytes).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "coordinator/scheduler.h"
#include "engine/local_engine.h"
#include "kernels/cpu/cpu_features.h"
#include "model/state_bytes.h"
#include "nlohmann/json.hpp"

namespace mmx {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// STREAM triad a = b + s*c over arrays far larger than the caches, on every pool thread.
// Returns GB/s counting 3 arrays of traffic per element, as STREAM does.
double TriadGBs(int64_t n, int repeats) {
  std::vector<float> a(n), b(n, 1.f), c(n, 2.f);
  ThreadPool& pool = ThreadPool::Default();
  pool.ParallelFor(n, 1 << 16, [&](int64_t b0, int64_t b1) {  // first touch on the thread that uses it
    std::fill(a.begin() + b0, a.begin() + b1, 0.f);
  });
  double best = 0;
  for (int r = 0; r < repeats; ++r) {
    const double t0 = Now();
    pool.ParallelFor(n, 1 << 16, [&](int64_t i0, int64_t i1) {
      float* __restrict pa = a.data();
      const float* __restrict pb = b.data();
      const float* __restrict pc = c.data();
      for (int64_t i = i0; i < i1; ++i) pa[i] = pb[i] + 3.f * pc[i];
    });
    best = std::max(best, 3.0 * n * sizeof(float) / (Now() - t0) / 1e9);
  }
  return best;
}

int64_t PeakRssBytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  }
  return 0;
}

// Reads every shard once so that the measured steps hit the page cache, not the disk (the
// model maker writes with O_DIRECT, so a fresh model is not cached).
void WarmPageCache(const std::string& dir) {
  std::ifstream index(dir + "/model.safetensors.index.json");
  if (!index) return;
  std::set<std::string> files;
  for (auto& [name, file] : nlohmann::json::parse(index)["weight_map"].items()) files.insert(file.get<std::string>());
  std::vector<char> buf(1 << 24);
  for (const std::string& f : files) {
    std::ifstream in(dir + "/" + f, std::ios::binary);
    while (in.read(buf.data(), static_cast<std::streamsize>(buf.size())) || in.gcount() > 0) {
    }
  }
}

int64_t CheckpointWeightBytes(const std::string& dir) {
  std::ifstream in(dir + "/model.safetensors.index.json");
  if (!in) return 0;
  return nlohmann::json::parse(in)["metadata"]["total_size"].get<int64_t>();
}

struct BenchOptions {
  std::string model_dir;
  std::vector<int> batches;
  int steps = 32;
  int prefill_len = 512;
  std::string activations = "fp32";
  std::string expert_dtype = "bf16";
  int context = 16;              // prompt tokens of each decoding sequence
  std::string kv_dtype = "bf16";
};

// The engine, and every step its scheduler runs as the scheduler reports them.
class Bench {
 public:
  absl::Status Start(const BenchOptions& o) {
    int max_batch = 1;
    for (int b : o.batches) max_batch = std::max(max_batch, b);
    engine::LocalEngineOptions options;
    options.model_dir = o.model_dir;
    options.expert_dtype = o.expert_dtype;
    MMX_ASSIGN_OR_RETURN(options.kv_dtype, model::ParseKvDType(o.kv_dtype));
    options.bf16_activations = o.activations == "bf16";
    options.scheduler.max_sequences = max_batch;
    const int chunk = std::max({o.prefill_len, std::min(o.context, 256), 16});
    // Every sequence's chunk in each step: the batch's prompts end together, so its decode steps
    // hold every sequence (a longer --context would otherwise spread the prefills over the decode).
    options.scheduler.max_step_tokens = std::max(16, std::min(o.context, chunk)) * max_batch + chunk;
    options.scheduler.prefill_chunk = chunk;
    options.scheduler.micro_batches = 1;
    options.scheduler.on_step = [this](const coordinator::StepReport& r) {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.push_back(r);
    };
    absl::StatusOr<std::unique_ptr<engine::LocalEngine>> engine = engine::LocalEngine::Start(options);
    if (!engine.ok()) return engine.status();
    engine_ = *std::move(engine);
    return absl::OkStatus();
  }

  const model::ModelConfig& config() const { return engine_->config(); }

  // Runs `prompts` (greedy, no stop ids) to `max_tokens` each; returns the steps they took.
  absl::StatusOr<std::vector<coordinator::StepReport>> Run(const std::vector<std::vector<int32_t>>& prompts,
                                                           int max_tokens) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      reports_.clear();
    }
    std::vector<std::shared_ptr<coordinator::Request>> requests;
    for (const auto& prompt : prompts) {
      coordinator::Request::Params p;
      p.prompt = prompt;
      p.max_tokens = max_tokens;
      requests.push_back(std::make_shared<coordinator::Request>(next_id_++, p));
      absl::Status submitted = engine_->scheduler().Submit(requests.back());
      if (!submitted.ok()) return submitted;
    }
    std::vector<coordinator::TokenEvent> events;
    for (auto& r : requests) {
      while (r->Next(&events, absl::InfiniteDuration())) {
      }
      if (!r->final_status().ok()) return r->final_status();
    }
    std::lock_guard<std::mutex> lock(mu_);
    return reports_;
  }

 private:
  std::unique_ptr<engine::LocalEngine> engine_;
  uint64_t next_id_ = 1;
  std::mutex mu_;
  std::vector<coordinator::StepReport> reports_;
};

// One row of the decode table: b sequences, steps + 1 decode steps after the prefill (the first
// untimed: it touches pages the prefill did not).
absl::Status MeasureDecode(Bench& bench, int b, int steps, int context, double triad, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(bench.config().vocab_size - 1));
  std::vector<std::vector<int32_t>> prompts(b);
  for (auto& p : prompts) {
    for (int t = 0; t < context; ++t) p.push_back(token(rng));
  }
  // The prefill step samples the first token; steps + 1 decode steps follow.
  absl::StatusOr<std::vector<coordinator::StepReport>> steps_run = bench.Run(prompts, steps + 2);
  if (!steps_run.ok()) return steps_run.status();
  double seconds = 0;
  int64_t bytes = 0;
  int timed = 0, decode_steps = 0;
  for (const coordinator::StepReport& r : *steps_run) {
    if (r.num_prompt_tokens > 0 || r.num_tokens != b) continue;
    if (decode_steps++ == 0) continue;
    seconds += r.seconds;
    bytes += r.weight_bytes;
    ++timed;
  }
  if (timed == 0) return absl::InternalError(absl::StrCat("batch ", b, ": no decode step ran with every sequence"));
  const double tps = static_cast<double>(b) * timed / seconds;
  const double gbs = bytes / seconds / 1e9;
  std::printf("| %d | %.2f | %.1f | %.3f | %.1f | %.2f |\n", b, tps, 1e3 * seconds / timed, bytes / 1e9 / timed,
              gbs, gbs / triad);
  return absl::OkStatus();
}

absl::Status MeasurePrefill(Bench& bench, int prefill_len, std::mt19937& rng) {
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(bench.config().vocab_size - 1));
  std::vector<int32_t> prompt;
  for (int t = 0; t < prefill_len; ++t) prompt.push_back(token(rng));
  absl::StatusOr<std::vector<coordinator::StepReport>> steps_run = bench.Run({prompt}, 1);
  if (!steps_run.ok()) return steps_run.status();
  if (steps_run->empty()) return absl::InternalError("the prefill ran no step");
  const double dt = steps_run->front().seconds;
  std::printf("\nprefill: %d tokens in %.2f s = %.1f tokens/s\n", prefill_len, dt, prefill_len / dt);
  return absl::OkStatus();
}

absl::Status RunBench(const BenchOptions& o) {
  const double triad = TriadGBs(int64_t{1} << 26, 5);  // 3 x 256 MiB
  std::printf("threads: %d\nSTREAM triad: %.1f GB/s\n", ThreadPool::Default().num_threads(), triad);

  WarmPageCache(o.model_dir);
  {
    // Reset the peak-RSS mark so the triad's arrays do not count against the model's footprint.
    std::ofstream clear_refs("/proc/self/clear_refs");
    clear_refs << "5";
  }
  Bench bench;
  const double load_t0 = Now();
  MMX_RETURN_IF_ERROR(bench.Start(o));
  std::printf("activations: %s\nexperts: %s (load %.1f s)\nkernels: %s\n", o.activations.c_str(),
              o.expert_dtype.c_str(), Now() - load_t0, kernels::IsaName(kernels::ActiveIsa()));
  {
    // The state the largest batch holds at the end of its decode (model/state_bytes.h).
    const model::ModelConfig& c = bench.config();
    const int largest = *std::max_element(o.batches.begin(), o.batches.end());
    const int64_t positions = o.context + o.steps + 2;
    const DType kv = *model::ParseKvDType(o.kv_dtype);
    std::printf("KV cache: %s; %d sequences of %lld positions hold %.3f GB of state (KV %.3f GB)\n",
                o.kv_dtype.c_str(), largest, static_cast<long long>(positions),
                largest * model::SequenceStateBytes(c, 0, c.num_hidden_layers, positions, kv) / 1e9,
                largest * model::SequenceStateBytes(c, 0, c.num_hidden_layers, positions, kv) / 1e9 -
                    largest * model::SequenceStateBytes(c, 0, c.num_hidden_layers, 0, kv) / 1e9);
  }
  std::mt19937 rng(1);
  std::printf("\n| batch | tokens/s | ms/step | weight GB read/step | achieved GB/s | of triad |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int b : o.batches) MMX_RETURN_IF_ERROR(MeasureDecode(bench, b, o.steps, o.context, triad, rng));
  if (o.prefill_len > 0) MMX_RETURN_IF_ERROR(MeasurePrefill(bench, o.prefill_len, rng));

  const int64_t weights = CheckpointWeightBytes(o.model_dir);
  const int64_t rss = PeakRssBytes();
  std::printf("peak RSS: %.2f GB; checkpoint weights: %.2f GB; ratio %.3f\n", rss / 1e9,
              weights / 1e9, weights > 0 ? static_cast<double>(rss) / weights : 0.0);
  return absl::OkStatus();
}

}  // namespace
}  // namespace mmx

int main(int argc, char** argv) {
  using namespace mmx;
  BenchOptions o;
  std::string batches_text = "1,8,32";
  int threads = 0;
  CLI::App app{"mmx-bench-decode: decode and prefill throughput against the memory roofline"};
  app.add_option("--model", o.model_dir, "Checkpoint directory")->required();
  app.add_option("--threads", threads, "Compute threads (default: all cores)");
  app.add_option("--batches", batches_text, "Batch sizes, comma-separated");
  app.add_option("--steps", o.steps, "Timed decode steps per batch size");
  app.add_option("--prefill", o.prefill_len, "Prompt length of the prefill measurement (0 = skip)");
  app.add_option("--activations", o.activations, "fp32 or bf16 (batched GEMMs)")->check(CLI::IsMember({"fp32", "bf16"}));
  app.add_option("--expert-dtype", o.expert_dtype, "bf16 (as stored) or int8 (experts quantized at load)")
      ->check(CLI::IsMember({"bf16", "int8"}));
  app.add_option("--context", o.context, "Prompt tokens of each decoding sequence (the context decode reads)")
      ->check(CLI::Range(1, 1 << 20));
  app.add_option("--kv-dtype", o.kv_dtype, "bf16 (as served) or fp32 (golden-exact) KV cache")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  CLI11_PARSE(app, argc, argv);
  if (threads > 0) ThreadPool::SetDefaultThreads(threads);
  for (absl::string_view s : absl::StrSplit(batches_text, ',')) {
    int b;
    if (!absl::SimpleAtoi(s, &b) || b < 1) {
      std::fprintf(stderr, "mmx-bench-decode: error: bad batch size '%s'\n", std::string(s).c_str());
      return 2;
    }
    o.batches.push_back(b);
  }
  absl::Status status = RunBench(o);
  if (!status.ok()) {
    std::fprintf(stderr, "mmx-bench-decode: error: %s\n", std::string(status.message()).c_str());
    return 1;
  }
  return 0;
}
