#include "coordinator/run_command.h"

#include <cstdio>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "base/npy.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "model/generate_local.h"
#include "nlohmann/json.hpp"

namespace mmx::coordinator {

CLI::App* AddRunCommand(CLI::App& app, RunOptions* o) {
  CLI::App* run = app.add_subcommand("run", "Generate locally, in this process, from a checkpoint");
  run->add_option("--model", o->model_dir, "Checkpoint directory (config.json, safetensors)")->required();
  run->add_option("--prompt-ids", o->prompt_ids, "Prompt token ids, comma-separated: 5,17,42")->required();
  run->add_option("--max-tokens", o->max_tokens, "New tokens to generate (>= 1)")->required();
  run->add_option("--temperature", o->temperature, "0 = greedy (default)");
  run->add_option("--top-p", o->top_p, "Nucleus sampling mass in (0, 1]");
  run->add_option("--top-k", o->top_k, "Keep the k most likely tokens (0 = off)");
  run->add_option("--seed", o->seed, "Sampling seed");
  run->add_flag("--json", o->json, "Print one JSON object on stdout");
  run->add_option("--logits-out", o->logits_out,
                  "Write logits [P + N - 1, V] as float32 .npy (prefill rows, then decode steps)");
  run->add_option("--threads", o->threads, "Compute threads (default: all cores)");
  run->add_option("--prefill-chunk", o->prefill_chunk, "Prompt tokens per prefill step");
  run->add_option("--eos-id", o->eos_ids, "Stop token id (repeatable; default: the model's)");
  run->add_flag("--no-eos", o->no_eos, "Never stop early: always generate --max-tokens");
  run->add_option("--activations", o->activations,
                  "fp32 (exact, default) or bf16 (batched GEMMs round activations to bf16: faster prefill)")
      ->check(CLI::IsMember({"fp32", "bf16"}));
  run->add_option("--expert-dtype", o->expert_dtype,
                  "bf16 (experts as the checkpoint stores them, default) or int8 (quantized at load: "
                  "weight-only, per-output-channel scales; half the expert bytes)")
      ->check(CLI::IsMember({"bf16", "int8"}));
  return run;
}

absl::StatusOr<std::vector<int32_t>> ParsePromptIds(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    std::string s(absl::StripAsciiWhitespace(item));
    if (s.empty()) {
      if (text.find_first_not_of(" \t") == std::string::npos) break;  // empty prompt
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt-ids: empty item in '", text, "'; write ids like 5,17,42"));
    }
    int32_t id;
    if (!absl::SimpleAtoi(s, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--prompt-ids: '", s, "' is not an integer token id"));
    }
    ids.push_back(id);
  }
  if (ids.empty()) {
    return absl::InvalidArgumentError("--prompt-ids: the prompt is empty; give at least one token id");
  }
  return ids;
}

absl::Status RunLocal(const RunOptions& o) {
  MMX_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, ParsePromptIds(o.prompt_ids));
  if (o.threads > 0) ThreadPool::SetDefaultThreads(o.threads);

  model::GenerateOptions options;
  options.max_tokens = o.max_tokens;
  options.sampling = {o.temperature, o.top_p, o.top_k, o.seed};
  options.prefill_chunk = o.prefill_chunk;
  options.keep_logits = !o.logits_out.empty();
  // Check the request before the (possibly long) load, with the model's vocabulary size.
  MMX_ASSIGN_OR_RETURN(model::ModelConfig config, model::ModelConfig::FromFile(o.model_dir));
  MMX_RETURN_IF_ERROR(model::ValidateGenerateRequest(config, {prompt}, options));

  model::ModelLoadOptions load;
  MMX_ASSIGN_OR_RETURN(load.expert_dtype, model::ParseExpertDType(o.expert_dtype));
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<model::ModelRunner> runner,
                       model::ModelRunner::Load(o.model_dir, load));
  runner->set_activation_precision(o.activations == "bf16" ? kernels::ActivationPrecision::kBf16
                                                           : kernels::ActivationPrecision::kFp32);
  if (o.no_eos) {
    options.eos_ids.clear();
  } else if (!o.eos_ids.empty()) {
    options.eos_ids = o.eos_ids;
  } else {
    options.eos_ids = model::DefaultEosIds(runner->config());
  }
  model::GenerateStats stats;
  MMX_ASSIGN_OR_RETURN(std::vector<model::GenerateResult> results,
                       model::Generate(*runner, {prompt}, options, &stats));
  const model::GenerateResult& r = results[0];

  if (!o.logits_out.empty()) {
    const int64_t V = runner->config().vocab_size;
    const int64_t rows = static_cast<int64_t>(r.logits.size()) / V;
    MMX_RETURN_IF_ERROR(WriteNpyF32(o.logits_out, {rows, V}, r.logits.data()));
  }
  const double prefill_tps = stats.prefill_seconds > 0 ? stats.prompt_tokens / stats.prefill_seconds : 0;
  // Decode steps are the output tokens after the first (the first comes from the prefill).
  const double decode_tps =
      stats.decode_seconds > 0 ? (stats.output_tokens - 1) / stats.decode_seconds : 0;
  if (o.json) {
    nlohmann::json j;
    j["prompt_ids"] = r.prompt_ids;
    j["output_ids"] = r.output_ids;
    j["finish_reason"] = r.finish_reason;
    j["tokens_per_second"] = stats.tokens_per_second();
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("output ids: %s\n", absl::StrJoin(r.output_ids, ",").c_str());
    std::printf("finish reason: %s\n", r.finish_reason.c_str());
    std::printf("prefill: %lld tokens in %.3f s (%.1f tokens/s)\n",
                static_cast<long long>(stats.prompt_tokens), stats.prefill_seconds, prefill_tps);
    std::printf("decode: %lld tokens in %.3f s (%.2f tokens/s)\n",
                static_cast<long long>(stats.output_tokens - 1), stats.decode_seconds, decode_tps);
    std::printf("tokens/s: %.2f (%lld output tokens in %.3f s, prefill included)\n",
                stats.tokens_per_second(), static_cast<long long>(stats.output_tokens),
                stats.total_seconds);
  }
  return absl::OkStatus();
}

}  // namespace mmx::coordinator
