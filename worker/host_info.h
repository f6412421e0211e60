// What a worker measures about its machine before it registers: memory, read bandwidth, cores,
// host name. The planner places work by these figures; the coordinator splits a host's memory
// among the workers that share it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace mmx::worker {

// Read bandwidth of this machine in GB/s, measured over a short scan of 64 MiB.
double MeasureReadBandwidth();
// Physical memory.
int64_t MemoryBytes();
// MemAvailable from /proc/meminfo (what the kernel can hand out without swapping); 0 if unknown.
int64_t AvailableMemoryBytes();
std::string HostName();
// The cores this process may run on (its affinity mask, as taskset or a container sets it).
int UsableCores();
// Which cores those are (the process's affinity), ascending.
std::vector<int> UsableCpus();

}  // namespace mmx::worker
