// EngineStepper: drives a LocalEngine's workers step by step from the coordinator's data-plane
// endpoint, with the messages the scheduler sends (coordinator/step_codec.h, step_client.h),
// choosing every step's tokens itself: teacher forcing, chunk sizes, what shares a step. The
// golden checks (tests/testing/golden_checks.h) run every backend and cluster layout through it.
// The engine must run without its scheduler (LocalEngineOptions::start_scheduler = false).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/step_client.h"
#include "coordinator/step_codec.h"
#include "engine/local_engine.h"

namespace mmx::testing {

class EngineStepper {
 public:
  explicit EngineStepper(engine::LocalEngine& engine) : engine_(engine) {}

  struct Input {
    uint64_t sequence_id = 0;  // a new id starts a sequence
    std::vector<int32_t> tokens;
    bool all_logits = false;   // every token's logits, else only the last one's
  };

  // One step over `inputs`, split into `micro_batches` contiguous micro-batches. Returns each
  // input's logits, [rows, V] row-major.
  absl::StatusOr<std::vector<std::vector<float>>> Step(const std::vector<Input>& inputs, int micro_batches = 1) {
    const int64_t V = engine_.config().vocab_size;
    const uint32_t count = static_cast<uint32_t>(std::max<size_t>(1, std::min<size_t>(micro_batches, inputs.size())));
    std::vector<std::vector<coordinator::SequenceStep>> parts(count);
    for (size_t i = 0; i < inputs.size(); ++i) {
      coordinator::SequenceStep s;
      s.sequence_id = inputs[i].sequence_id;
      s.start_position = positions_[inputs[i].sequence_id];
      s.tokens = inputs[i].tokens;
      s.sample = false;  // the checks take the argmax of the returned logits themselves
      s.return_logits = true;
      parts[i * count / inputs.size()].push_back(std::move(s));
    }
    const uint64_t step_id = next_step_++;
    std::vector<coordinator::OutgoingMicroBatch> outgoing;
    for (uint32_t m = 0; m < count; ++m) {
      outgoing.push_back(coordinator::EncodeMicroBatch(step_id, m, count, parts[m], m == 0 ? freed_ : std::vector<uint64_t>{}));
      outgoing.back().header.set_sequence_epoch(engine_.cluster().epoch());  // workers drop other epochs' steps
    }
    freed_.clear();
    const model::ModelConfig& c = engine_.config();
    coordinator::StepClient client(&engine_.transport(), transport::WireLimits{c.hidden_size, c.vocab_size,
                                                                               c.num_hidden_layers, c.num_local_experts});
    MMX_ASSIGN_OR_RETURN(std::vector<coordinator::MicroBatchResult> results,
                         client.Run(engine_.cluster().head(), outgoing, absl::Seconds(120)));
    last_weight_bytes_ = 0;
    for (const auto& r : results) {
      for (const v1::WorkerTime& t : r.timings) last_weight_bytes_ += static_cast<int64_t>(t.weight_bytes());
    }
    std::vector<std::vector<float>> out;
    for (const Input& in : inputs) {
      positions_[in.sequence_id] += static_cast<int64_t>(in.tokens.size());
      const std::vector<float>* rows = nullptr;
      for (const auto& r : results) {
        if (auto it = r.logits.find(in.sequence_id); it != r.logits.end()) rows = &it->second;
      }
      if (rows == nullptr) return absl::InternalError(absl::StrCat("no logits for sequence ", in.sequence_id));
      out.emplace_back(in.all_logits ? rows->begin() : rows->end() - V, rows->end());
    }
    return out;
  }

  // Weight bytes the workers read for the last step (each tensor once per micro-batch).
  int64_t last_weight_bytes() const { return last_weight_bytes_; }

  // Ends a sequence: the workers drop its state with the next step.
  void End(uint64_t sequence_id) {
    positions_.erase(sequence_id);
    freed_.push_back(sequence_id);
  }

 private:
  engine::LocalEngine& engine_;
  std::map<uint64_t, int64_t> positions_;
  std::vector<uint64_t> freed_;
  uint64_t next_step_ = 1;
  int64_t last_weight_bytes_ = 0;
};

}  // namespace mmx::testing
