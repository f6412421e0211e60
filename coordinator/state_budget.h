// StateBudget: admission control by the memory each attention stage has for per-sequence
// state. A request is admitted only when every stage can hold its state at its longest
// (prompt + max_tokens positions): the lightning state of each owned lightning layer plus the
// softmax layers' KV cache, as model/sequence_state.h holds them (fp32). Reservations are
// released when the request leaves the running batch. A request that could not fit even on an
// idle cluster is refused with RESOURCE_EXHAUSTED saying how much it needs where.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "model/config.h"

namespace mmx::coordinator {

struct StageMemory {
  std::string worker;
  int begin = 0, end = 0;      // attention layers [begin, end)
  int64_t capacity_bytes = 0;  // memory the stage has for sequence state
};

// Bytes one sequence of `positions` tokens holds on a stage owning layers [begin, end).
int64_t SequenceStateBytes(const model::ModelConfig& config, int begin, int end, int64_t positions);

class StateBudget {
 public:
  StateBudget(const model::ModelConfig& config, std::vector<StageMemory> stages);

  enum class Admission { kAdmitted, kWait, kNever };
  // Reserves `positions` tokens of state for `id` on every stage, or says why not (`why`).
  Admission TryReserve(uint64_t id, int64_t positions, std::string* why);
  // Reserves `positions` for `id` whatever is free: a running request carried over to a rebuilt
  // cluster (failover) keeps its place; new admissions wait until the stages are below capacity.
  void Hold(uint64_t id, int64_t positions);
  void Release(uint64_t id);
  int64_t reserved_bytes(const std::string& worker) const;
  // reserved_bytes of every stage, by worker.
  std::map<std::string, int64_t> reserved_by_worker() const;

 private:
  // The state bytes `positions` take on each stage.
  std::vector<int64_t> Need(int64_t positions) const;
  void Commit(uint64_t id, std::vector<int64_t> need);

  const model::ModelConfig config_;
  std::vector<StageMemory> stages_;
  std::vector<int64_t> reserved_;                       // per stage
  std::map<uint64_t, std::vector<int64_t>> holdings_;  // per request, per stage
};

}  // namespace mmx::coordinator
