#include "coordinator/step_results.h"

#include <algorithm>

namespace mmx::coordinator {
namespace {

TokenEvent ToEvent(const v1::SampledToken& t) {
  TokenEvent ev;
  ev.token_id = t.token_id();
  ev.logprob = t.logprob();
  ev.top_ids.assign(t.top_token_ids().begin(), t.top_token_ids().end());
  ev.top_logprobs.assign(t.top_logprobs().begin(), t.top_logprobs().end());
  return ev;
}

// Appends a sampled token to `r` and ends the request when the token ends it. Returns the
// outcome ("stop", "length"), or "" when the request goes on.
std::string AppendSampled(Request& r, const v1::SampledToken& t) {
  TokenEvent ev = ToEvent(t);
  r.output.push_back(t.token_id());
  const auto& stops = r.params().stop_ids;
  const bool stop_id = std::find(stops.begin(), stops.end(), t.token_id()) != stops.end();
  const bool length = static_cast<int>(r.output.size()) >= r.params().max_tokens;
  const bool stop_string = r.AppendToken(std::move(ev), /*last=*/stop_id || length);
  if (stop_id || stop_string) {
    r.Finish("stop");
    return "stop";
  }
  if (length) {
    r.Finish("length");
    return "length";
  }
  return "";
}

}  // namespace

void ApplyResult(const std::vector<Request*>& members, const std::vector<PlannedSequence>& planned,
                 const MicroBatchResult& result, int64_t vocab_size, absl::Time now, Metrics* metrics) {
  for (size_t i = 0; i < members.size(); ++i) {
    Request& r = *members[i];
    const PlannedSequence& p = planned[i];
    r.processed += p.num_tokens;
    if (metrics && p.start_position < r.replay_until) {
      metrics->ReplayedTokens(std::min(r.replay_until, p.start_position + p.num_tokens) - p.start_position);
    }
    if (auto logits = result.logits.find(r.id()); logits != result.logits.end()) {
      r.AppendLogits(logits->second.data(), p.start_position, p.num_tokens, vocab_size);
    }
    if (auto scored = result.prompt.find(r.id()); scored != result.prompt.end()) {
      std::vector<TokenEvent> rows;
      for (const v1::SampledToken& t : scored->second) rows.push_back(ToEvent(t));
      r.AppendPromptLogprobs(p.start_position, std::move(rows));
    }
    if (!p.sample || r.done()) continue;
    const auto token = result.tokens.find(r.id());
    if (token == result.tokens.end()) continue;  // DecodeReply refuses such a reply
    const bool resumed = r.paused_at != absl::InfiniteFuture();
    if (metrics) {
      if (resumed) {
        // The first token after a failover: the client saw a pause this long.
        metrics->ObservePause(absl::ToDoubleSeconds(now - r.paused_at));
      } else if (r.output.empty()) {
        metrics->ObserveTimeToFirstToken(absl::ToDoubleSeconds(now - r.created()));
      } else {
        metrics->ObserveTimePerOutputToken(absl::ToDoubleSeconds(now - r.last_token_at));
      }
      metrics->GeneratedTokens(1);
    }
    r.last_token_at = now;
    r.paused_at = absl::InfiniteFuture();
    const std::string outcome = AppendSampled(r, token->second);
    if (!outcome.empty() && metrics) metrics->RequestEnded(outcome);
  }
}

}  // namespace mmx::coordinator
