// Random-weight checkpoint writer: presets, a counter-based normal sampler, and the shard
// streamer. Each tensor is generated into a buffer by all threads (each on its own range) and
// streamed to its shard while the next one is generated, so a 7 GB model needs memory for two
// buffers of its largest tensor only.
#include "model/model_maker.h"

#include <algorithm>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "base/splitmix64.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "model/checkpoint.h"
#include "model/tokenizer/tokenizer_maker.h"
#include "nlohmann/json.hpp"

namespace mmx::model {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

constexpr uint64_t kGiB = uint64_t{1} << 30;
constexpr uint64_t kMaxDefaultShardBytes = 2 * kGiB;

// The released config.json's values for everything but the sizes (MODEL.md §1).
ModelConfig ReleasedDefaults() {
  ModelConfig c;
  c.architecture = "MiniMaxText01ForCausalLM";
  c.model_type = "minimax_text_01";
  c.rope_theta = 10000000.0;
  c.max_position_embeddings = 10240000;
  c.num_experts_per_tok = 2;
  const double alpha = 3.5565588200778455;  // (2 * 80)^(1/4), kept for every preset
  c.linear_attn_alpha = c.full_attn_alpha = c.mlp_alpha = alpha;
  c.linear_attn_beta = c.full_attn_beta = c.mlp_beta = 1.0;
  c.postnorm = true;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = false;
  c.lightning_block_size = 256;
  return c;
}

// Softmax attention at every `period`-th layer (l with (l+1) % period == 0), lightning elsewhere.
std::vector<AttentionKind> EveryNthSoftmax(int num_layers, int period) {
  std::vector<AttentionKind> kinds(num_layers, AttentionKind::kLightning);
  for (int l = period - 1; l < num_layers; l += period) kinds[l] = AttentionKind::kSoftmax;
  return kinds;
}

ModelConfig Sized(int64_t vocab, int64_t hidden, int layers, int softmax_period, int heads,
                  int head_dim, int kv_heads, int rotary_dim, int experts, int64_t ffn) {
  ModelConfig c = ReleasedDefaults();
  c.vocab_size = vocab;
  c.hidden_size = hidden;
  c.num_hidden_layers = layers;
  c.attn_type_list = EveryNthSoftmax(layers, softmax_period);
  c.num_attention_heads = heads;
  c.head_dim = head_dim;
  c.num_key_value_heads = kv_heads;
  c.rotary_dim = rotary_dim;
  c.num_local_experts = experts;
  c.intermediate_size = ffn;
  return c;
}

// Random numbers are counter-based (SplitMix64Mix of key + counter, the key from the seed and
// this hash of the tensor's name), so any element of any tensor can be generated on its own, in
// any order.
uint64_t Fnv1a64(const std::string& s) {
  uint64_t h = 0xcbf29ce484222325;
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3;
  return h;
}

// Box-Muller needs log, sqrt, sin and cos for every pair of samples; libm's scalar calls would
// make generation slower than the disk. These branch-free polynomials vectorize and are far
// more accurate than the BF16 the samples end up in.

// ln(u) for u in [2^-24, 1]: u = 2^e * m with m in [sqrt(1/2), sqrt(2)), and
// ln(m) = 2 atanh(s) = 2 (s + s^3/3 + ...), s = (m - 1) / (m + 1), |s| < 0.172.
inline float LogUnit(float u) {
  const uint32_t bits = std::bit_cast<uint32_t>(u);
  int32_t e = static_cast<int32_t>(bits >> 23) - 127;
  float m = std::bit_cast<float>((bits & 0x7fffffu) | 0x3f800000u);  // [1, 2)
  // Selects of constants, not of expressions, so the compiler if-converts (vectorizes) them.
  const bool high = m > 1.41421356f;
  m *= high ? 0.5f : 1.0f;
  e += high ? 1 : 0;
  const float s = (m - 1.0f) / (m + 1.0f);
  const float s2 = s * s;
  const float series =
      2.0f + s2 * (2.0f / 3 + s2 * (2.0f / 5 + s2 * (2.0f / 7 + s2 * (2.0f / 9))));
  return static_cast<float>(e) * 0.693147181f + s * series;
}

// sin and cos of 2*pi*t for t in [0, 1): the nearest quarter turn k, then Taylor series on the
// remainder x in [-pi/4, pi/4], then rotation by k quarter turns.
inline void SinCosTurn(float t, float& sin_out, float& cos_out) {
  const float q = t * 4.0f;
  const float k = std::floor(q + 0.5f);
  const float x = (q - k) * 1.57079633f;
  const float x2 = x * x;
  const float sn =
      x * (1.0f + x2 * (-1.0f / 6 + x2 * (1.0f / 120 + x2 * (-1.0f / 5040 + x2 / 362880))));
  const float cs =
      1.0f + x2 * (-0.5f + x2 * (1.0f / 24 + x2 * (-1.0f / 720 + x2 / 40320)));
  const int32_t quadrant = static_cast<int32_t>(k) & 3;
  const float s = (quadrant & 1) ? cs : sn;
  const float c = (quadrant & 1) ? sn : cs;
  sin_out = s * ((quadrant & 2) ? -1.0f : 1.0f);
  cos_out = c * (((quadrant + 1) & 2) ? -1.0f : 1.0f);
}

// Samples are made in fixed blocks of pairs: every pair goes through the same vector code
// whatever range the caller asked for, which keeps the output independent of how a tensor is
// split between threads.
constexpr int kBlockPairs = 64;

// z0[k], z1[k]: the two N(0, 1) samples of pair first + k of stream `key` (Box-Muller on the
// splitmix64 output of counter first + k + 1).
void NormalBlock(uint64_t key, uint64_t first, float* z0, float* z1) {
  uint32_t hi[kBlockPairs], lo[kBlockPairs];
  for (int k = 0; k < kBlockPairs; ++k) {
    const uint64_t r = SplitMix64Mix(key + (first + static_cast<uint64_t>(k) + 1) * kSplitMix64Gamma);
    hi[k] = static_cast<uint32_t>(r >> 40);               // 24 bits
    lo[k] = static_cast<uint32_t>(r >> 16) & 0xffffffu;   // the next 24 bits
  }
  for (int k = 0; k < kBlockPairs; ++k) {
    const float u1 = static_cast<float>(static_cast<int32_t>(hi[k]) + 1) * 0x1p-24f;  // (0, 1]
    const float u2 = static_cast<float>(static_cast<int32_t>(lo[k])) * 0x1p-24f;      // [0, 1)
    const float radius = std::sqrt(-2.0f * LogUnit(u1));
    float s, c;
    SinCosTurn(u2, s, c);
    z0[k] = radius * c;
    z1[k] = radius * s;
  }
}

// FloatToBf16 without its NaN case (these values are finite), so the loop vectorizes.
inline uint16_t FiniteToBf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  return static_cast<uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

std::string HumanBytes(uint64_t bytes) {
  if (bytes >= kGiB) return absl::StrFormat("%.1f GiB", static_cast<double>(bytes) / kGiB);
  return absl::StrFormat("%.1f MiB", static_cast<double>(bytes) / (1 << 20));
}

absl::Status WriteTextFile(const std::string& path, const std::string& text) {
  const std::string partial = path + ".partial";
  {
    std::ofstream out(partial, std::ios::binary | std::ios::trunc);
    if (!out) return absl::ErrnoToStatus(errno, absl::StrCat("cannot create ", partial));
    out << text;
    out.close();
    if (!out) return absl::ErrnoToStatus(errno, absl::StrCat("cannot write ", partial));
  }
  std::error_code ec;
  fs::rename(partial, path, ec);
  if (ec) {
    return absl::ErrnoToStatus(ec.value(), absl::StrCat("cannot rename into place ", path));
  }
  return absl::OkStatus();
}

uint64_t DefaultShardSize(const ModelConfig& config) {
  uint64_t total = 0, largest = 0;
  for (const auto& [name, shape] : ExpectedTensors(config)) {
    const uint64_t bytes = TensorSpec{name, DType::kBF16, shape}.num_bytes();
    total += bytes;
    largest = std::max(largest, bytes);
  }
  return std::min(kMaxDefaultShardBytes, total / 2 + largest);
}

// Writes one shard. The pool generates tensor k+1 while a writer thread streams tensor k to
// disk (copying into the page cache costs about as much CPU as generating), so two buffers of
// the largest tensor are the memory bound. Reports progress about once a second.
absl::Status WriteShard(const std::string& path, const std::vector<TensorSpec>& specs,
                        uint64_t seed, ThreadPool& pool,
                        const std::function<void(const std::string&)>& progress) {
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<SafetensorsWriter> writer,
                       SafetensorsWriter::Create(path, specs, SafetensorsWriter::Mode::kDirect));
  const std::string label = absl::StrCat("writing ", fs::path(path).filename().string(), " (",
                                         HumanBytes(writer->data_size()), ")");
  const uint64_t total = std::max<uint64_t>(writer->data_size(), 1);
  auto report = [&](uint64_t written) {
    if (progress) progress(absl::StrCat(label, " ", written * 100 / total, "%"));
  };
  report(0);

  std::vector<uint16_t> buffers[2];
  std::mutex mu;
  std::condition_variable cv;
  std::vector<uint16_t>* pending = nullptr;  // generated, not yet written; guarded by mu
  bool finished = false;                     // no more tensors; guarded by mu
  absl::Status write_status;                 // guarded by mu
  std::thread writer_thread([&] {
    auto last_report = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu);
    while (true) {
      cv.wait(lock, [&] { return pending != nullptr || finished; });
      if (pending == nullptr) return;
      std::vector<uint16_t>* buffer = pending;
      lock.unlock();
      absl::Status status = writer->Write(buffer->data(), buffer->size() * 2);
      if (std::chrono::steady_clock::now() - last_report > std::chrono::seconds(1) &&
          writer->bytes_written() < writer->data_size()) {
        report(writer->bytes_written());
        last_report = std::chrono::steady_clock::now();
      }
      lock.lock();
      if (!status.ok() && write_status.ok()) write_status = status;
      pending = nullptr;
      cv.notify_all();
    }
  });

  for (size_t t = 0; t < specs.size(); ++t) {
    const TensorSpec& spec = specs[t];
    std::vector<uint16_t>& buffer = buffers[t % 2];  // the writer holds at most the other one
    const int64_t n = static_cast<int64_t>(spec.num_bytes() / 2);
    buffer.resize(static_cast<size_t>(n));
    const InitSpec init = InitFor(spec.name, spec.shape);
    // Ranges of even length keep Box-Muller pairs whole (not needed for correctness).
    pool.ParallelFor(n, 2, [&](int64_t begin, int64_t end) {
      FillTensorBf16(seed, spec.name, init, begin, end - begin, buffer.data() + begin);
    });
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return pending == nullptr; });
    if (!write_status.ok()) break;
    pending = &buffer;
    cv.notify_all();
  }
  {
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, [&] { return pending == nullptr; });
    finished = true;
    cv.notify_all();
  }
  writer_thread.join();
  MMX_RETURN_IF_ERROR(write_status);
  MMX_RETURN_IF_ERROR(writer->Close());
  report(writer->data_size());
  return absl::OkStatus();
}

}  // namespace

std::vector<std::string> PresetNames() { return {"tiny", "small", "medium"}; }

absl::StatusOr<ModelConfig> PresetConfig(const std::string& name) {
  // Arguments: vocab, hidden, layers, softmax period, heads, head_dim, kv heads, rotary, experts,
  // expert FFN width.
  if (name == "tiny") {  // = tests/data/golden/tiny-a/config.json
    return Sized(512, 96, 8, 4, 4, 64, 2, 32, 8, 144);
  }
  if (name == "small") {  // ~507M parameters, ~1.0 GB
    return Sized(32000, 1024, 8, 8, 8, 128, 2, 64, 16, 1024);
  }
  if (name == "medium") {  // = tests/data/bench-m.config.json: 3.67B parameters, 7.3 GB
    return Sized(32000, 2048, 16, 8, 16, 128, 2, 64, 16, 2048);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown preset '", name, "'; known presets: ",
                                                 absl::StrJoin(PresetNames(), ", ")));
}

InitSpec InitFor(const std::string& name, const std::vector<int64_t>& shape) {
  if (shape.size() == 1) return {1.0f, 0.1f};  // every 1-D weight is an RMSNorm gain
  if (name == "model.embed_tokens.weight") return {0.0f, 0.05f};
  float gain = 1.0f;
  if (absl::EndsWith(name, ".qkv_proj.weight")) {
    gain = 0.5f;
  } else if (absl::EndsWith(name, ".q_proj.weight") || absl::EndsWith(name, ".k_proj.weight")) {
    gain = 1.2f;
  } else if (absl::EndsWith(name, ".out_proj.weight") || absl::EndsWith(name, ".o_proj.weight") ||
             absl::EndsWith(name, ".w2.weight") ||
             absl::EndsWith(name, ".block_sparse_moe.gate.weight")) {
    gain = 2.0f;
  } else if (name == "lm_head.weight") {
    gain = 3.0f;
  }
  const float fan_in = static_cast<float>(shape.empty() ? 1 : shape.back());
  return {0.0f, gain / std::sqrt(fan_in)};
}

void FillTensorBf16(uint64_t seed, const std::string& name, const InitSpec& init, int64_t begin,
                    int64_t n, uint16_t* out) {
  constexpr int64_t kBlock = 2 * kBlockPairs;  // elements per block: pair j -> 2j, 2j + 1
  const uint64_t key = SplitMix64Mix(seed + kSplitMix64Gamma) ^ Fnv1a64(name);
  const int64_t end = begin + n;
  float z0[kBlockPairs], z1[kBlockPairs];
  uint16_t values[kBlock];
  for (int64_t block = begin / kBlock; block * kBlock < end; ++block) {
    NormalBlock(key, static_cast<uint64_t>(block * kBlockPairs), z0, z1);
    for (int k = 0; k < kBlockPairs; ++k) {
      values[2 * k] = FiniteToBf16(init.mean + init.stddev * z0[k]);
      values[2 * k + 1] = FiniteToBf16(init.mean + init.stddev * z1[k]);
    }
    const int64_t from = std::max(begin, block * kBlock);
    const int64_t to = std::min(end, (block + 1) * kBlock);
    std::memcpy(out + (from - begin), values + (from - block * kBlock),
                static_cast<size_t>(to - from) * sizeof(uint16_t));
  }
}

std::string ShardFileName(int index, int num_shards) {
  return absl::StrFormat("model-%05d-of-%05d.safetensors", index + 1, num_shards);
}

std::vector<std::vector<TensorSpec>> PlanShards(const ModelConfig& config,
                                                uint64_t shard_size_bytes) {
  std::vector<std::vector<TensorSpec>> shards(1);
  uint64_t current = 0;
  for (const auto& [name, shape] : ExpectedTensors(config)) {
    TensorSpec spec{name, DType::kBF16, shape};
    const uint64_t bytes = spec.num_bytes();
    // Hugging Face's rule: a tensor that does not fit starts a new shard, unless the shard is
    // empty (a tensor larger than the limit gets a shard of its own).
    if (!shards.back().empty() && current + bytes > shard_size_bytes) {
      shards.emplace_back();
      current = 0;
    }
    shards.back().push_back(std::move(spec));
    current += bytes;
  }
  return shards;
}

absl::StatusOr<MadeModel> MakeModel(const ModelConfig& config, const std::string& out_dir,
                                    const MakeModelOptions& options) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) {
    return absl::ErrnoToStatus(ec.value(),
                               absl::StrCat("cannot create output directory ", out_dir));
  }
  const uint64_t shard_size =
      options.shard_size_bytes > 0 ? options.shard_size_bytes : DefaultShardSize(config);
  const std::vector<std::vector<TensorSpec>> shards = PlanShards(config, shard_size);
  const int num_threads = options.num_threads > 0
                              ? options.num_threads
                              : std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  ThreadPool pool(num_threads);

  MadeModel made;
  made.num_shards = static_cast<int>(shards.size());
  Json weight_map = Json::object();
  for (size_t s = 0; s < shards.size(); ++s) {
    const std::string file = ShardFileName(static_cast<int>(s), made.num_shards);
    MMX_RETURN_IF_ERROR(WriteShard((fs::path(out_dir) / file).string(), shards[s], options.seed,
                                   pool, options.progress));
    for (const TensorSpec& spec : shards[s]) {
      weight_map[spec.name] = file;
      made.num_tensors += 1;
      made.num_parameters += static_cast<int64_t>(spec.num_bytes() / 2);
      made.total_bytes += spec.num_bytes();
    }
  }
  // The tokenizer does not depend on the seed: the same vocabulary size gives the same file.
  if (config.vocab_size >= tokenizer::kMinTestTokenizerVocabSize) {
    MMX_RETURN_IF_ERROR(WriteTextFile((fs::path(out_dir) / "tokenizer.json").string(),
                                      tokenizer::MakeTestTokenizerJson(config.vocab_size)));
  } else if (options.progress) {
    options.progress(absl::StrCat("no tokenizer.json: vocab_size ", config.vocab_size,
                                  " is below the ", tokenizer::kMinTestTokenizerVocabSize,
                                  " ids a byte-level tokenizer needs"));
  }
  const Json index = {{"metadata", {{"total_size", made.total_bytes}}},
                      {"weight_map", weight_map}};
  MMX_RETURN_IF_ERROR(WriteTextFile((fs::path(out_dir) / "model.safetensors.index.json").string(),
                                    index.dump(2) + "\n"));
  MMX_RETURN_IF_ERROR(
      WriteTextFile((fs::path(out_dir) / "config.json").string(), config.ToJson()));
  return made;
}

}  // namespace mmx::model
