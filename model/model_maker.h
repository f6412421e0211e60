// Random-weight checkpoints in the official MiniMax-Text-01 layout (config.json, BF16 shards
// model-0000i-of-0000N.safetensors, model.safetensors.index.json, and a small test
// tokenizer.json from model/tokenizer/tokenizer_maker.h), for tests and benchmarks:
// the library half of mmx-mkmodel. Not a trainer and not a converter: the weights are noise,
// scaled like the golden tiny-a set so that routing and activations are not degenerate.
//
// Determinism: a tensor's values depend only on (seed, tensor name, shape), never on the thread
// count or the shard size, so tensors and parts of tensors can be generated in any order.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace mmx::model {

// "tiny" (the golden tiny-a shape, ~7 MB), "small" (~1 GB), "medium" (bench-m, 7.3 GB).
std::vector<std::string> PresetNames();
// InvalidArgument for an unknown name; the message lists the known ones.
absl::StatusOr<ModelConfig> PresetConfig(const std::string& name);

struct MakeModelOptions {
  uint64_t seed = 1;
  // Cut a shard before a tensor that would take it past this size. 0: min(2 GiB, half the
  // model plus its largest tensor), which gives every model at least two shards so that
  // multi-shard loading is always exercised.
  uint64_t shard_size_bytes = 0;
  int num_threads = 0;  // 0: one per online CPU
  // Receives progress lines ("writing model-00002-of-00004.safetensors (1.9 GiB) 45%"): at the
  // start and end of each shard and about once a second in between. Called from MakeModel's
  // threads, one call at a time. May be empty.
  std::function<void(const std::string&)> progress;
};

struct MadeModel {
  int num_shards = 0;
  int64_t num_tensors = 0;
  int64_t num_parameters = 0;
  uint64_t total_bytes = 0;  // tensor data, as in the index's metadata.total_size
};

// Writes a checkpoint for `config` into `out_dir`, creating the directory if needed and
// overwriting files of the same names. config.json is written last, so a directory left by an
// interrupted run does not open as a checkpoint. tokenizer.json depends only on the vocabulary
// size, and is left out below the 258 ids a byte-level tokenizer needs (progress says so).
// Memory use is bounded by two buffers of the largest tensor (one being generated, one being
// written).
// Errors carry the errno's code and name the path (e.g. PermissionDenied, NotFound).
absl::StatusOr<MadeModel> MakeModel(const ModelConfig& config, const std::string& out_dir,
                                    const MakeModelOptions& options);

// The shards MakeModel writes: tensors in module order (ExpectedTensors), cut by size.
std::vector<std::vector<TensorSpec>> PlanShards(const ModelConfig& config,
                                                uint64_t shard_size_bytes);
std::string ShardFileName(int index, int num_shards);  // 0-based index -> model-00001-of-...

// How a tensor is initialised: value = mean + stddev * N(0, 1).
struct InitSpec {
  float mean = 0;
  float stddev = 1;
};
// Linear [out, in]: N(0, (gain/sqrt(in))^2) with gain 0.5 for qkv_proj, 1.2 for q/k_proj, 2 for
// out_proj/o_proj/w2 and the router gate, 3 for lm_head, 1 otherwise; 1-D norms 1 + 0.1*N(0,1);
// embeddings N(0, 0.05^2).
InitSpec InitFor(const std::string& name, const std::vector<int64_t>& shape);

// Writes elements [begin, begin + n) of tensor `name` as BF16 into out[0..n). Any split of a
// tensor into ranges gives the same values as generating it whole.
void FillTensorBf16(uint64_t seed, const std::string& name, const InitSpec& init, int64_t begin,
                    int64_t n, uint16_t* out);

}  // namespace mmx::model
