// StateBudget: admission control by the memory each attention stage has for per-sequence
// state. A request is admitted only when every stage can hold its state at its longest
// (prompt + max_tokens positions): the lightning state of each owned lightning layer plus the
// softmax layers' KV blocks in the served dtype, as model/sequence_state.h holds them
// (model/state_bytes.h, which the planner counts by too). Reservations are
// released when the request leaves the running batch. A request that could not fit even on an
// idle cluster is refused with RESOURCE_EXHAUSTED saying how much it needs where.
//
// With attention groups (plan/shard_config.h) a sequence lives in one group: it reserves on that
// group's stages only, in the group where it leaves the largest share of memory free.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "base/dtype.h"
#include "model/config.h"
#include "model/state_bytes.h"

namespace mmx::coordinator {

struct StageMemory {
  std::string worker;
  int begin = 0, end = 0;      // attention layers [begin, end)
  int64_t capacity_bytes = 0;  // memory the stage has for sequence state
  std::string group;           // its attention group ("": the default)
};

class StateBudget {
 public:
  // Sequences hold their KV caches in `kv_dtype` (the shard config's serving.kv_dtype).
  StateBudget(const model::ModelConfig& config, DType kv_dtype, std::vector<StageMemory> stages);

  enum class Admission { kAdmitted, kWait, kNever };
  // Reserves `positions` tokens of state for `id` on every stage of the group where it leaves the
  // largest share of memory free (the least free fraction of its stages' capacity, after the
  // reservation; ties: the first group), or says why not
  // (`why`: kNever when no group could ever hold it).
  Admission TryReserve(uint64_t id, int64_t positions, std::string* why);
  // Reserves `positions` for `id` in `group` whatever is free: a running request carried over to a
  // rebuilt cluster (failover) keeps its place; new admissions wait until the stages are below
  // capacity.
  void Hold(uint64_t id, int64_t positions, const std::string& group = "");
  void Release(uint64_t id);
  // The group `id` holds its state in ("" when none, or the default group).
  std::string group_of(uint64_t id) const;
  int64_t reserved_bytes(const std::string& worker) const;
  // reserved_bytes of every stage, by worker.
  std::map<std::string, int64_t> reserved_by_worker() const;

 private:
  // The state bytes `positions` take on each stage of `group` (0 on the others).
  std::vector<int64_t> Need(int64_t positions, const std::string& group) const;
  void Commit(uint64_t id, std::vector<int64_t> need, const std::string& group);
  // The groups of the stages, in stage order ("" alone when there are no stages).
  std::vector<std::string> Groups() const;

  const model::ModelConfig config_;
  const DType kv_dtype_;
  std::vector<StageMemory> stages_;
  std::vector<int64_t> reserved_;                       // per stage
  struct Holding {
    std::vector<int64_t> bytes;  // per stage
    std::string group;
  };
  std::map<uint64_t, Holding> holdings_;  // per request
};

}  // namespace mmx::coordinator
