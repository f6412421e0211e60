#include "tools/run_command.h"

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/ascii.h"
#include "base/npy.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "coordinator/request.h"
#include "coordinator/request_factory.h"
#include "engine/local_engine.h"
#include "mmx/v1/inference.pb.h"
#include "model/config.h"
#include "model/state_bytes.h"
#include "tools/prompt_ids.h"
#include "nlohmann/json.hpp"

namespace mmx::tools {

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
  run->add_option("--kv-dtype", o->kv_dtype,
                  "The softmax KV cache's dtype: bf16 (as the model is served, default) or fp32 (golden-exact, "
                  "twice the memory)")
      ->check(CLI::IsMember({"bf16", "fp32"}));
  return run;
}

namespace {

// The run's request, through the same validation as a served one: every bad flag is refused
// before the (possibly long) load, with the model's vocabulary size.
absl::StatusOr<coordinator::Request::Params> MakeParams(const RunOptions& o, const std::vector<int32_t>& prompt,
                                                         const model::ModelConfig& config) {
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
  v1::SamplingParams* s = request.mutable_sampling();
  s->set_max_tokens(o.max_tokens);
  s->set_temperature(o.temperature);
  s->set_top_p(o.top_p);
  s->set_top_k(o.top_k);
  s->set_seed(o.seed);
  // --eos-id replaces the model's stop ids; --no-eos drops them all.
  s->set_ignore_eos(o.no_eos || !o.eos_ids.empty());
  if (!o.no_eos) {
    for (int64_t id : o.eos_ids) s->add_stop_token_ids(static_cast<int32_t>(id));
  }
  coordinator::ServingLimits limits;
  limits.max_prompt_tokens = std::numeric_limits<int>::max();
  limits.max_tokens = std::numeric_limits<int>::max();
  const coordinator::RequestFactory factory(config, /*tokenizer=*/nullptr, limits);
  MMX_ASSIGN_OR_RETURN(coordinator::Request::Params params, factory.Validate(request));
  params.return_logits = !o.logits_out.empty();
  return params;
}

double Seconds(absl::Time from, absl::Time to) { return std::max(0.0, absl::ToDoubleSeconds(to - from)); }

}  // namespace

absl::Status RunLocal(const RunOptions& o) {
  MMX_ASSIGN_OR_RETURN(std::vector<int32_t> prompt, ParsePromptIds(o.prompt_ids));
  if (o.threads > 0) ThreadPool::SetDefaultThreads(o.threads);
  MMX_ASSIGN_OR_RETURN(model::ModelConfig config, model::ModelConfig::FromFile(o.model_dir));
  MMX_ASSIGN_OR_RETURN(coordinator::Request::Params params, MakeParams(o, prompt, config));

  // The whole cluster in this process: one worker with every role.
  engine::LocalEngineOptions options;
  options.model_dir = o.model_dir;
  options.expert_dtype = o.expert_dtype;
  MMX_ASSIGN_OR_RETURN(options.kv_dtype, model::ParseKvDType(o.kv_dtype));
  options.bf16_activations = o.activations == "bf16";
  options.scheduler.prefill_chunk = o.prefill_chunk;
  options.scheduler.max_step_tokens = o.prefill_chunk + 1;  // the whole chunk in every prefill step
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<engine::LocalEngine> engine, engine::LocalEngine::Start(options));

  auto request = std::make_shared<coordinator::Request>(1, std::move(params));
  const absl::Time start = absl::Now();
  MMX_RETURN_IF_ERROR(engine->scheduler().Submit(request));
  std::vector<int32_t> output_ids;
  std::vector<coordinator::TokenEvent> events;
  while (request->Next(&events, absl::InfiniteDuration())) {
    for (const coordinator::TokenEvent& e : events) output_ids.push_back(e.token_id);
  }
  MMX_RETURN_IF_ERROR(request->final_status());

  if (!o.logits_out.empty()) {
    const std::vector<float> logits = request->logits();
    const int64_t V = config.vocab_size;
    MMX_RETURN_IF_ERROR(WriteNpyF32(o.logits_out, {static_cast<int64_t>(logits.size()) / V, V}, logits.data()));
  }
  const int64_t prompt_tokens = static_cast<int64_t>(prompt.size());
  const int64_t output_tokens = static_cast<int64_t>(output_ids.size());
  const double prefill_seconds = Seconds(start, request->first_token_time());
  const double decode_seconds = Seconds(request->first_token_time(), request->end_time());
  const double total_seconds = Seconds(start, request->end_time());
  const double tokens_per_second = total_seconds > 0 ? output_tokens / total_seconds : 0;
  if (o.json) {
    nlohmann::json j;
    j["prompt_ids"] = prompt;
    j["output_ids"] = output_ids;
    j["finish_reason"] = request->finish_reason();
    j["tokens_per_second"] = tokens_per_second;
    std::printf("%s\n", j.dump().c_str());
    return absl::OkStatus();
  }
  // The first output token comes from the prefill; decode steps make the others.
  const int64_t decode_tokens = std::max<int64_t>(0, output_tokens - 1);
  std::printf("output ids: %s\n", absl::StrJoin(output_ids, ",").c_str());
  std::printf("finish reason: %s\n", request->finish_reason().c_str());
  std::printf("prefill: %lld tokens in %.3f s (%.1f tokens/s)\n", static_cast<long long>(prompt_tokens),
              prefill_seconds, prefill_seconds > 0 ? prompt_tokens / prefill_seconds : 0);
  std::printf("decode: %lld tokens in %.3f s (%.2f tokens/s)\n", static_cast<long long>(decode_tokens),
              decode_seconds, decode_seconds > 0 ? decode_tokens / decode_seconds : 0);
  std::printf("tokens/s: %.2f (%lld output tokens in %.3f s, prefill included)\n", tokens_per_second,
              static_cast<long long>(output_tokens), total_seconds);
  return absl::OkStatus();
}

}  // namespace mmx::tools
