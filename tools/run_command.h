// `mmx-coord run`: generate in this process, from a checkpoint directory: the engine of a cluster
// with every role in this process (engine/local_engine.h), so the same code as `serve` and its
// workers runs the model. The interface is fixed (other tools call it):
//   mmx-coord run --model DIR --prompt-ids 5,17,42 --max-tokens N [--temperature T] [--top-p P]
//                 [--top-k K] [--seed S] [--json] [--logits-out FILE.npy]
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"

namespace mmx::tools {

struct RunOptions {
  std::string model_dir;
  std::string prompt_ids;  // comma-separated, as typed
  int max_tokens = 16;
  float temperature = 0.f;
  float top_p = 1.f;
  int top_k = 0;
  uint64_t seed = 0;
  bool json = false;
  std::string logits_out;
  int threads = 0;          // 0 = all cores
  int prefill_chunk = 256;
  std::vector<int64_t> eos_ids;  // empty = the model's default stop ids
  bool no_eos = false;
  std::string activations = "fp32";  // fp32 | bf16 (batched GEMMs)
  std::string expert_dtype = "bf16";  // bf16 (as stored) | int8 (quantized at load)
  std::string kv_dtype = "bf16";      // bf16 (as served) | fp32 (golden-exact)
};

// Registers the `run` subcommand and its flags on `app`.
CLI::App* AddRunCommand(CLI::App& app, RunOptions* options);

// Runs the generation and prints the result; the returned status becomes the exit code.
absl::Status RunLocal(const RunOptions& options);

}  // namespace mmx::tools
