#include "coordinator/state_budget.h"

#include "absl/strings/str_format.h"

namespace mmx::coordinator {

int64_t SequenceStateBytes(const model::ModelConfig& c, int begin, int end, int64_t positions) {
  const int64_t lightning = int64_t{c.num_attention_heads} * c.head_dim * c.head_dim * sizeof(float);
  const int64_t kv_per_token = 2 * int64_t{c.num_key_value_heads} * c.head_dim * sizeof(float);
  int64_t bytes = 0;
  for (int l = begin; l < end; ++l) bytes += c.is_softmax(l) ? kv_per_token * positions : lightning;
  return bytes;
}

StateBudget::StateBudget(const model::ModelConfig& config, std::vector<StageMemory> stages)
    : config_(config), stages_(std::move(stages)), reserved_(stages_.size(), 0) {}

std::vector<int64_t> StateBudget::Need(int64_t positions) const {
  std::vector<int64_t> need(stages_.size());
  for (size_t i = 0; i < stages_.size(); ++i) need[i] = SequenceStateBytes(config_, stages_[i].begin, stages_[i].end, positions);
  return need;
}

void StateBudget::Commit(uint64_t id, std::vector<int64_t> need) {
  for (size_t i = 0; i < stages_.size(); ++i) reserved_[i] += need[i];
  holdings_[id] = std::move(need);
}

StateBudget::Admission StateBudget::TryReserve(uint64_t id, int64_t positions, std::string* why) {
  std::vector<int64_t> need = Need(positions);
  Admission verdict = Admission::kAdmitted;
  for (size_t i = 0; i < stages_.size(); ++i) {
    const StageMemory& s = stages_[i];
    if (s.capacity_bytes <= 0) continue;  // unknown capacity: not limited here
    if (need[i] > s.capacity_bytes) {
      *why = absl::StrFormat(
          "this request needs %.1f MiB of sequence state on worker '%s' (%d positions), which has %.1f MiB for "
          "all sequences; lower max_tokens or the prompt",
          need[i] / 1048576.0, s.worker, positions, s.capacity_bytes / 1048576.0);
      return Admission::kNever;
    }
    if (reserved_[i] + need[i] > s.capacity_bytes) verdict = Admission::kWait;
  }
  if (verdict == Admission::kWait) return verdict;
  Commit(id, std::move(need));
  return Admission::kAdmitted;
}

void StateBudget::Hold(uint64_t id, int64_t positions) {
  Release(id);
  Commit(id, Need(positions));
}

void StateBudget::Release(uint64_t id) {
  auto it = holdings_.find(id);
  if (it == holdings_.end()) return;
  for (size_t i = 0; i < stages_.size(); ++i) reserved_[i] -= it->second[i];
  holdings_.erase(it);
}

std::map<std::string, int64_t> StateBudget::reserved_by_worker() const {
  std::map<std::string, int64_t> out;
  for (size_t i = 0; i < stages_.size(); ++i) out[stages_[i].worker] += reserved_[i];
  return out;
}

int64_t StateBudget::reserved_bytes(const std::string& worker) const {
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (stages_[i].worker == worker) return reserved_[i];
  }
  return 0;
}

}  // namespace mmx::coordinator
