#include "model/generate_local.h"

#include <algorithm>
#include <chrono>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::model {
namespace {

struct LiveSequence {
  int64_t id = 0;
  const std::vector<int32_t>* prompt = nullptr;
  int64_t prompt_done = 0;   // prompt tokens processed
  int32_t next_token = -1;   // sampled, not yet fed
  bool finished = false;
  Sampler sampler;
  GenerateResult* result = nullptr;
};

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

absl::Status ValidateGenerateRequest(const ModelConfig& config,
                                     const std::vector<std::vector<int32_t>>& prompts,
                                     const GenerateOptions& options) {
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string which = prompts.size() > 1 ? absl::StrCat("prompt ", i, ": ") : "";
    if (prompts[i].empty()) {
      return absl::InvalidArgumentError(which + "the prompt is empty; give at least one token id");
    }
    for (int32_t id : prompts[i]) {
      if (id < 0 || id >= config.vocab_size) {
        return absl::InvalidArgumentError(absl::StrCat(which, "token id ", id,
                                                       " is outside the vocabulary [0, ",
                                                       config.vocab_size, ")"));
      }
    }
  }
  if (options.max_tokens < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens must be >= 1, got ", options.max_tokens));
  }
  if (options.prefill_chunk < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("prefill chunk must be >= 1, got ", options.prefill_chunk));
  }
  return ValidateSamplingParams(options.sampling);
}

absl::StatusOr<std::vector<GenerateResult>> Generate(
    ModelRunner& runner, const std::vector<std::vector<int32_t>>& prompts,
    const GenerateOptions& options, GenerateStats* stats) {
  const ModelConfig& c = runner.config();
  MMX_RETURN_IF_ERROR(ValidateGenerateRequest(c, prompts, options));
  const int64_t V = c.vocab_size;
  GenerateStats local_stats;
  GenerateStats& st = stats ? *stats : local_stats;
  st = GenerateStats{};
  const auto t_start = std::chrono::steady_clock::now();

  std::vector<GenerateResult> results(prompts.size());
  std::vector<LiveSequence> live;
  live.reserve(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    SamplingParams sp = options.sampling;
    sp.seed += i;
    live.push_back(LiveSequence{static_cast<int64_t>(i), &prompts[i], 0, -1, false, Sampler(sp),
                                &results[i]});
    results[i].prompt_ids = prompts[i];
    st.prompt_tokens += static_cast<int64_t>(prompts[i].size());
    MMX_RETURN_IF_ERROR(runner.StartSequence(live.back().id));
  }

  auto is_eos = [&](int32_t id) {
    return std::find(options.eos_ids.begin(), options.eos_ids.end(), id) != options.eos_ids.end();
  };

  absl::Status status;
  while (status.ok()) {
    std::vector<StepInput> inputs;
    std::vector<LiveSequence*> members;
    bool has_prefill = false;
    for (LiveSequence& s : live) {
      if (s.finished) continue;
      StepInput in;
      in.sequence_id = s.id;
      const int64_t P = static_cast<int64_t>(s.prompt->size());
      if (s.prompt_done < P) {
        const int64_t n = std::min<int64_t>(options.prefill_chunk, P - s.prompt_done);
        in.tokens.assign(s.prompt->begin() + s.prompt_done, s.prompt->begin() + s.prompt_done + n);
        in.all_logits = options.keep_logits;
        has_prefill = true;
      } else {
        in.tokens = {s.next_token};
      }
      inputs.push_back(std::move(in));
      members.push_back(&s);
    }
    if (inputs.empty()) break;

    const auto t_step = std::chrono::steady_clock::now();
    absl::StatusOr<StepOutput> out = runner.Step(inputs);
    if (!out.ok()) {
      status = out.status();
      break;
    }
    (has_prefill ? st.prefill_seconds : st.decode_seconds) += SecondsSince(t_step);

    for (size_t i = 0; i < members.size(); ++i) {
      LiveSequence& s = *members[i];
      const std::vector<float>& logits = out->logits[i];
      const int64_t P = static_cast<int64_t>(s.prompt->size());
      const bool was_prefill = s.prompt_done < P;
      if (was_prefill) s.prompt_done += static_cast<int64_t>(inputs[i].tokens.size());
      if (options.keep_logits) {
        s.result->logits.insert(s.result->logits.end(), logits.begin(), logits.end());
      }
      if (was_prefill && s.prompt_done < P) continue;  // mid-prompt: nothing to sample yet
      const float* last = logits.data() + logits.size() - V;
      const int32_t token = s.sampler.Sample(last, V);
      s.result->output_ids.push_back(token);
      ++st.output_tokens;
      if (is_eos(token)) {
        s.finished = true;
        s.result->finish_reason = "stop";
      } else if (static_cast<int>(s.result->output_ids.size()) >= options.max_tokens) {
        s.finished = true;
        s.result->finish_reason = "length";
      } else {
        s.next_token = token;
      }
      if (s.finished) runner.EndSequence(s.id);
    }
  }
  for (const LiveSequence& s : live) runner.EndSequence(s.id);
  MMX_RETURN_IF_ERROR(status);
  st.total_seconds = SecondsSince(t_start);
  return results;
}

}  // namespace mmx::model
