#include "worker/expert_host.h"

#include <chrono>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/activation_rows.h"
#include "transport/message_keys.h"
#include "transport/payload.h"
#include "transport/wire_check.h"

namespace mmx::worker {

absl::Status HandleDispatch(const LoadedShard& shard, transport::Transport* transport,
                            const transport::Message& message) {
  const model::ModelConfig& c = shard.config();
  MMX_ASSIGN_OR_RETURN(v1::DispatchHeader d, transport::CheckDispatch(message, shard.wire_limits()));
  v1::CombineHeader reply;
  reply.set_step_id(d.step_id());
  reply.set_micro_batch(d.micro_batch());
  reply.set_layer(d.layer());
  reply.set_rows_dtype(d.rows_dtype());  // answered as asked
  const uint64_t key = transport::ReplyKey(transport::MessageKind::kCombine, d.step_id(), d.micro_batch(), d.layer());
  auto refuse = [&](const absl::Status& status) {
    reply.set_error(absl::StrCat("worker ", shard.shard.name, ": ", status.message()));
    reply.set_error_code(static_cast<int>(status.code()));
    MMX_RETURN_IF_ERROR(transport->Send(message.from, key, reply.SerializeAsString(), nullptr, 0));
    return status;
  };
  for (int id : d.expert_ids()) {
    if (!shard.HoldsExpert(d.layer(), id)) {
      return refuse(absl::FailedPreconditionError(absl::StrCat("does not hold expert ", id, " of layer ", d.layer())));
    }
  }
  const int64_t n = d.expert_ids_size();
  const auto started = std::chrono::steady_clock::now();
  transport::PooledFloats out(n * c.hidden_size);  // sent as is: pooled, huge pages when large
  std::vector<int> ids(d.expert_ids().begin(), d.expert_ids().end());
  std::vector<float> weights(d.weights().begin(), d.weights().end());
  std::vector<float> widened;
  const float* rows = reinterpret_cast<const float*>(message.payload.data());
  if (d.rows_dtype() != v1::ROWS_FP32) {
    widened.resize(out.size());
    transport::DecodeRows(message.payload.data(), static_cast<int64_t>(out.size()), d.rows_dtype(), widened.data());
    rows = widened.data();
  }
  absl::StatusOr<int64_t> read = shard.compute->ExpertPairs(d.layer(), rows, ids.data(), weights.data(), n, out.data());
  if (!read.ok()) return refuse(read.status());
  reply.set_num_rows(static_cast<int32_t>(n));
  reply.set_compute_micros(static_cast<uint32_t>(
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started).count()));
  reply.set_weight_bytes(static_cast<uint64_t>(*read));
  transport::EncodedRows encoded;
  encoded.Encode(out.data(), static_cast<int64_t>(out.size()), d.rows_dtype());
  return transport->Send(message.from, key, reply.SerializeAsString(), encoded.data(), encoded.bytes());
}

}  // namespace mmx::worker
