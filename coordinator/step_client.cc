#include "coordinator/step_client.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/message_keys.h"

namespace mmx::coordinator {

absl::StatusOr<std::vector<MicroBatchResult>> StepClient::Run(transport::PeerId head,
                                                              const std::vector<OutgoingMicroBatch>& micro_batches,
                                                              absl::Duration timeout, std::stop_token stop) {
  for (const OutgoingMicroBatch& mb : micro_batches) {
    MMX_RETURN_IF_ERROR(transport_->Send(head, transport::InboxKey(transport::MessageKind::kStep),
                                         mb.header.SerializeAsString(), mb.tokens.data(),
                                         mb.tokens.size() * sizeof(int32_t)));
  }
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<MicroBatchResult> results;
  for (const OutgoingMicroBatch& mb : micro_batches) {
    const uint64_t key =
        transport::ReplyKey(transport::MessageKind::kTokens, mb.header.step_id(), mb.header.micro_batch(), 0);
    absl::StatusOr<transport::Message> reply = transport_->ReceiveAny(key, deadline - absl::Now(), stop);
    if (absl::IsDeadlineExceeded(reply.status())) {
      return absl::UnavailableError(absl::StrCat("step ", mb.header.step_id(), " got no tokens within ",
                                                 absl::FormatDuration(timeout)));
    }
    MMX_RETURN_IF_ERROR(reply.status());
    MMX_ASSIGN_OR_RETURN(MicroBatchResult result, DecodeReply(*reply, mb.header, limits_));
    results.push_back(std::move(result));
  }
  return results;
}

}  // namespace mmx::coordinator
