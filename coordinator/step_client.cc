#include "coordinator/step_client.h"

#include <optional>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/message_keys.h"

namespace mmx::coordinator {

using transport::InboxKey;
using transport::MessageKind;

absl::Status StepClient::Send(transport::PeerId head, const std::vector<OutgoingMicroBatch>& micro_batches) {
  for (const OutgoingMicroBatch& mb : micro_batches) {
    MMX_RETURN_IF_ERROR(transport_->Send(head, InboxKey(MessageKind::kStep), mb.header.SerializeAsString(),
                                         mb.tokens.data(), mb.tokens.size() * sizeof(int32_t)));
  }
  return absl::OkStatus();
}

absl::StatusOr<transport::Message> StepClient::NextReply(absl::Time deadline, std::stop_token stop) {
  return transport_->ReceiveAny(InboxKey(MessageKind::kTokens), deadline - absl::Now(), std::move(stop));
}

absl::StatusOr<std::vector<MicroBatchResult>> StepClient::Run(transport::PeerId head,
                                                              const std::vector<OutgoingMicroBatch>& micro_batches,
                                                              absl::Duration timeout, std::stop_token stop) {
  MMX_RETURN_IF_ERROR(Send(head, micro_batches));
  const absl::Time deadline = absl::Now() + timeout;
  const uint64_t step_id = micro_batches.empty() ? 0 : micro_batches[0].header.step_id();
  std::vector<std::optional<MicroBatchResult>> results(micro_batches.size());
  size_t left = micro_batches.size();
  while (left > 0) {
    absl::StatusOr<transport::Message> reply = NextReply(deadline, stop);
    if (absl::IsDeadlineExceeded(reply.status())) {
      return absl::UnavailableError(absl::StrCat("step ", step_id, " got no tokens within ", absl::FormatDuration(timeout)));
    }
    MMX_RETURN_IF_ERROR(reply.status());
    const std::optional<ReplyId> id = PeekReply(*reply);
    if (!id || id->step_id != step_id || id->micro_batch >= results.size() || results[id->micro_batch]) continue;
    MMX_ASSIGN_OR_RETURN(MicroBatchResult result, DecodeReply(*reply, micro_batches[id->micro_batch].header, limits_));
    results[id->micro_batch] = std::move(result);
    --left;
  }
  std::vector<MicroBatchResult> out;
  for (std::optional<MicroBatchResult>& r : results) out.push_back(*std::move(r));
  return out;
}

}  // namespace mmx::coordinator
