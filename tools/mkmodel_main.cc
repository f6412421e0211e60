// mmx-mkmodel: writes a random-weight MiniMax-Text-01 checkpoint in the official layout, with a
// small test tokenizer.json sized to its vocabulary (model/tokenizer/tokenizer_maker.h).
//
//   mmx-mkmodel (--preset NAME | --config config.json) --out DIR [--seed S] [--shard-size-mb M]
//
// Errors are one line on stderr and a non-zero exit; progress goes to stderr too.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "model/config.h"
#include "model/model_maker.h"

namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "mmx-mkmodel: %s\n", message.c_str());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Writes a random-weight MiniMax-Text-01 checkpoint (config.json, BF16 safetensors "
               "shards, model.safetensors.index.json)."};
  std::string preset, config_path, out_dir;
  uint64_t seed = 1;
  int64_t shard_size_mb = 0;
  int threads = 0;
  auto* preset_opt = app.add_option("--preset", preset, "tiny, small or medium");
  auto* config_opt = app.add_option("--config", config_path, "a config.json to follow instead");
  preset_opt->excludes(config_opt);
  app.add_option("--out", out_dir, "output directory (created if needed)")->required();
  app.add_option("--seed", seed, "random seed; same seed, same bytes")->capture_default_str();
  app.add_option("--shard-size-mb", shard_size_mb,
                 "cut shards at this size (default: min(2 GiB, about half the model))")
      ->check(CLI::PositiveNumber);
  app.add_option("--threads", threads, "generator threads (default: one per CPU)")
      ->check(CLI::PositiveNumber);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return Fail(std::string(e.what()) + " (see --help)");
  }
  if (preset.empty() == config_path.empty()) {
    return Fail("give exactly one of --preset NAME or --config PATH");
  }

  absl::StatusOr<mmx::model::ModelConfig> config =
      preset.empty() ? mmx::model::ModelConfig::FromFile(config_path)
                     : mmx::model::PresetConfig(preset);
  if (!config.ok()) return Fail(std::string(config.status().message()));

  mmx::model::MakeModelOptions options;
  options.seed = seed;
  options.shard_size_bytes = static_cast<uint64_t>(shard_size_mb) << 20;
  options.num_threads = threads;
  options.progress = [](const std::string& line) { std::fprintf(stderr, "%s\n", line.c_str()); };
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<mmx::model::MadeModel> made = mmx::model::MakeModel(*config, out_dir, options);
  if (!made.ok()) return Fail(std::string(made.status().message()));
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::fprintf(stderr, "wrote %s: %d shards, %lld tensors, %.1fM parameters, %.2f GB in %.1f s\n",
               out_dir.c_str(), made->num_shards, static_cast<long long>(made->num_tensors),
               made->num_parameters / 1e6, made->total_bytes / 1e9, seconds);
  return 0;
}
