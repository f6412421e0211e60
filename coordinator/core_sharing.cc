#include "coordinator/core_sharing.h"

#include <algorithm>
#include <map>

#include "absl/strings/str_cat.h"

namespace mmx::coordinator {

std::string DescribeCoreSharing(const std::vector<v1::Register>& workers) {
  struct Host {
    int workers = 0;
    int threads = 0;
    int cores = 0;
  };
  std::map<std::string, Host> hosts;
  for (const v1::Register& w : workers) {
    if (w.host().empty() || w.host_cores() <= 0) continue;
    Host& h = hosts[w.host()];
    ++h.workers;
    h.threads += std::max(1, w.threads());
    // Workers pinned to different core sets report their own counts; the largest bounds the host.
    h.cores = std::max(h.cores, w.host_cores());
  }
  for (const auto& [name, h] : hosts) {
    if (h.workers > 1 && h.threads > h.cores) {
      return absl::StrCat("host '", name, "' runs ", h.workers, " workers with ", h.threads, " threads on ", h.cores,
                          " cores");
    }
  }
  return "";
}

}  // namespace mmx::coordinator
