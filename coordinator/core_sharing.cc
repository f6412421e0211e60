#include "coordinator/core_sharing.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"

namespace mmx::coordinator {

namespace {

// One host's workers taking turns on its cores, described; "" when they do not.
struct Host {
  int workers = 0;
  int threads = 0;
  int cores = 0;
  std::set<int> cpus;      // the union of the workers' affinities, where each reported its own
  bool all_listed = true;

  std::string Sharing(const std::string& name) const {
    // Workers pinned to different cores (taskset) each have their own: the union counts.
    const int usable = all_listed ? static_cast<int>(cpus.size()) : cores;
    if (workers > 1 && threads > usable) {
      return absl::StrCat("host '", name, "' runs ", workers, " workers with ", threads, " threads on ", usable,
                          " cores");
    }
    return "";
  }
};

std::map<std::string, Host> Hosts(const std::vector<v1::Register>& workers) {
  std::map<std::string, Host> hosts;
  for (const v1::Register& w : workers) {
    if (w.host().empty() || w.host_cores() <= 0) continue;
    Host& h = hosts[w.host()];
    ++h.workers;
    h.threads += std::max(1, w.threads());
    // Without the cores themselves, the largest count bounds the host.
    h.cores = std::max(h.cores, w.host_cores());
    h.all_listed = h.all_listed && w.host_cpus_size() > 0;
    h.cpus.insert(w.host_cpus().begin(), w.host_cpus().end());
  }
  return hosts;
}

}  // namespace

std::string DescribeCoreSharing(const std::vector<v1::Register>& workers) {
  for (const auto& [name, h] : Hosts(workers)) {
    if (std::string sharing = h.Sharing(name); !sharing.empty()) return sharing;
  }
  return "";
}

std::set<std::string> HostsSharingCores(const std::vector<v1::Register>& workers) {
  std::set<std::string> sharing;
  for (const auto& [name, h] : Hosts(workers)) {
    if (!h.Sharing(name).empty()) sharing.insert(name);
  }
  return sharing;
}

AutomaticOverlap ChooseOverlap(const plan::ShardConfig& shard, const std::vector<v1::Register>& workers,
                               int num_experts) {
  AutomaticOverlap o;
  o.sharing = workers.size() < 2 ? "there is one worker" : DescribeCoreSharing(workers);
  if (!o.sharing.empty()) return o;
  std::map<std::string, int> stages_of_group;
  bool remote_experts = false;
  for (const plan::WorkerShard& w : shard.workers) {
    if (!w.attention) continue;
    ++stages_of_group[w.group];
    for (int layer = w.attention->begin; layer < w.attention->end; ++layer) {
      remote_experts = remote_experts || static_cast<int>(w.ExpertsOfLayer(layer, num_experts).size()) < num_experts;
    }
  }
  o.micro_batches = remote_experts ? 2 : 1;
  int stages = 1;  // in the longest group
  for (const auto& [group, count] : stages_of_group) stages = std::max(stages, count);
  o.steps_in_flight = shard.steps_in_flight > 0 ? shard.steps_in_flight : stages;
  return o;
}

}  // namespace mmx::coordinator
