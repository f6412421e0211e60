#include "coordinator/step_codec.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::coordinator {

OutgoingMicroBatch EncodeMicroBatch(uint64_t step_id, uint32_t index, uint32_t count,
                                    const std::vector<SequenceStep>& sequences, const std::vector<uint64_t>& freed) {
  OutgoingMicroBatch mb;
  mb.header.set_step_id(step_id);
  mb.header.set_micro_batch(index);
  mb.header.set_num_micro_batches(count);
  mb.header.set_layer(-1);  // token ids: the head embeds them
  for (const SequenceStep& s : sequences) {
    v1::StepSequence* out = mb.header.add_sequences();
    out->set_sequence_id(s.sequence_id);
    out->set_start_position(s.start_position);
    out->set_num_tokens(static_cast<int32_t>(s.tokens.size()));
    out->set_sample(s.sample);
    out->set_return_logits(s.return_logits);
    out->set_temperature(s.sampling.temperature);
    out->set_top_p(s.sampling.top_p);
    out->set_top_k(s.sampling.top_k);
    out->set_seed(s.sampling.seed);
    out->set_logprobs(s.logprobs);
    out->mutable_next_token_ids()->Add(s.next_token_ids.begin(), s.next_token_ids.end());
    out->set_prompt_logprobs(s.prompt_logprobs);
    mb.tokens.insert(mb.tokens.end(), s.tokens.begin(), s.tokens.end());
  }
  for (uint64_t id : freed) mb.header.add_freed_sequences(id);
  return mb;
}

std::optional<ReplyId> PeekReply(const transport::Message& reply) {
  v1::TokensHeader tokens;
  if (!tokens.ParseFromString(reply.header)) return std::nullopt;
  return ReplyId{tokens.step_id(), tokens.micro_batch()};
}

absl::StatusOr<MicroBatchResult> DecodeReply(const transport::Message& reply, const v1::StepHeader& sent,
                                             const transport::WireLimits& limits) {
  MMX_ASSIGN_OR_RETURN(v1::TokensHeader tokens, transport::CheckTokens(reply, limits));
  if (!tokens.error().empty()) return transport::RemoteError(tokens.error_code(), tokens.error());
  MicroBatchResult result;
  result.timings.assign(tokens.timings().begin(), tokens.timings().end());
  for (const v1::SampledToken& t : tokens.tokens()) result.tokens[t.sequence_id()] = t;
  std::map<uint64_t, const v1::StepSequence*> by_id;
  for (const v1::StepSequence& s : sent.sequences()) by_id[s.sequence_id()] = &s;
  const float* rows = reinterpret_cast<const float*>(reply.payload.data());
  for (const v1::LogitsRows& entry : tokens.logits()) {
    auto it = by_id.find(entry.sequence_id());
    if (it == by_id.end() || !it->second->return_logits() || it->second->num_tokens() != entry.num_rows()) {
      return absl::DataLossError(absl::StrCat("the tail returned ", entry.num_rows(), " logits rows for sequence ",
                                              entry.sequence_id(), ", which did not ask for them"));
    }
    const int64_t n = static_cast<int64_t>(entry.num_rows()) * limits.vocab_size;
    result.logits[entry.sequence_id()].assign(rows, rows + n);
    rows += n;
  }
  for (const v1::PromptRows& entry : tokens.prompt()) {
    auto it = by_id.find(entry.sequence_id());
    if (it == by_id.end() || it->second->next_token_ids_size() != entry.rows_size()) {
      return absl::DataLossError(absl::StrCat("the tail returned ", entry.rows_size(), " scored prompt rows for sequence ",
                                              entry.sequence_id(), ", which did not ask for that many"));
    }
    for (int i = 0; i < entry.rows_size(); ++i) {
      if (entry.rows(i).token_id() != it->second->next_token_ids(i)) {
        return absl::DataLossError(absl::StrCat("the tail scored prompt row ", i, " of sequence ", entry.sequence_id(),
                                                " against the wrong token"));
      }
    }
    result.prompt[entry.sequence_id()].assign(entry.rows().begin(), entry.rows().end());
  }
  for (const v1::StepSequence& s : sent.sequences()) {
    if (s.next_token_ids_size() > 0 && !result.prompt.count(s.sequence_id())) {
      return absl::DataLossError(absl::StrCat("the tail sent no prompt scores for sequence ", s.sequence_id()));
    }
    if (s.sample() && !result.tokens.count(s.sequence_id())) {
      return absl::DataLossError(absl::StrCat("the tail sent no token for sequence ", s.sequence_id()));
    }
    if (s.return_logits() && !result.logits.count(s.sequence_id())) {
      return absl::DataLossError(absl::StrCat("the tail sent no logits for sequence ", s.sequence_id()));
    }
  }
  return result;
}

}  // namespace mmx::coordinator
