#include "coordinator/state_budget.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_format.h"

namespace mmx::coordinator {

StateBudget::StateBudget(const model::ModelConfig& config, DType kv_dtype, std::vector<StageMemory> stages)
    : config_(config), kv_dtype_(kv_dtype), stages_(std::move(stages)), reserved_(stages_.size(), 0) {}

std::vector<int64_t> StateBudget::Need(int64_t positions, const std::string& group) const {
  std::vector<int64_t> need(stages_.size(), 0);
  for (size_t i = 0; i < stages_.size(); ++i) {
    if (stages_[i].group != group) continue;
    need[i] = model::SequenceStateBytes(config_, stages_[i].begin, stages_[i].end, positions, kv_dtype_);
  }
  return need;
}

std::vector<std::string> StateBudget::Groups() const {
  std::vector<std::string> groups;
  for (const StageMemory& s : stages_) {
    if (std::find(groups.begin(), groups.end(), s.group) == groups.end()) groups.push_back(s.group);
  }
  if (groups.empty()) groups.push_back("");
  return groups;
}

void StateBudget::Commit(uint64_t id, std::vector<int64_t> need, const std::string& group) {
  for (size_t i = 0; i < stages_.size(); ++i) reserved_[i] += need[i];
  holdings_[id] = Holding{std::move(need), group};
}

StateBudget::Admission StateBudget::TryReserve(uint64_t id, int64_t positions, std::string* why) {
  bool possible = false, found = false;
  std::string best, never_why;
  double best_left = 0;
  for (const std::string& group : Groups()) {
    const std::vector<int64_t> need = Need(positions, group);
    bool never = false, fits = true;
    // The least free fraction of the group's stages' memory, after this reservation (a fraction:
    // workers report what they measured free, and bytes would let that noise decide alone).
    double left = 2;
    for (size_t i = 0; i < stages_.size() && !never; ++i) {
      const StageMemory& s = stages_[i];
      if (s.group != group || s.capacity_bytes <= 0) continue;  // unknown capacity: not limited here
      if (need[i] > s.capacity_bytes) {
        never = true;
        if (never_why.empty()) {
          never_why = absl::StrFormat(
              "this request needs %.1f MiB of sequence state on worker '%s' (%d positions), which has %.1f MiB for "
              "all sequences; lower max_tokens or the prompt",
              need[i] / 1048576.0, s.worker, positions, s.capacity_bytes / 1048576.0);
        }
        break;
      }
      const int64_t free_after = s.capacity_bytes - reserved_[i] - need[i];
      fits = fits && free_after >= 0;
      left = std::min(left, static_cast<double>(free_after) / static_cast<double>(s.capacity_bytes));
    }
    if (never) continue;
    possible = true;
    if (fits && (!found || left > best_left)) {
      found = true;
      best = group;
      best_left = left;
    }
  }
  if (!possible) {
    *why = never_why;
    return Admission::kNever;
  }
  if (!found) return Admission::kWait;
  Commit(id, Need(positions, best), best);
  return Admission::kAdmitted;
}

void StateBudget::Hold(uint64_t id, int64_t positions, const std::string& group) {
  Release(id);
  Commit(id, Need(positions, group), group);
}

void StateBudget::Release(uint64_t id) {
  auto it = holdings_.find(id);
  if (it == holdings_.end()) return;
  for (size_t i = 0; i < stages_.size(); ++i) reserved_[i] -= it->second.bytes[i];
  holdings_.erase(it);
}

std::string StateBudget::group_of(uint64_t id) const {
  auto it = holdings_.find(id);
  return it == holdings_.end() ? "" : it->second.group;
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
