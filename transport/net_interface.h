// Which network devices the data plane may use. UCX otherwise opens its TCP transport on every
// interface of the machine, a public one included, whatever address the control plane uses.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace mmx::transport {

// The name of the interface this machine would send from to reach HOST:PORT (a UDP socket
// connected to it: nothing is sent). HOST may be an IPv6 address in brackets. NotFound when
// no interface holds the chosen source address; InvalidArgument when HOST does not resolve.
absl::StatusOr<std::string> InterfaceReaching(const std::string& host_port);

// The machine's RDMA ports as UCX names them ("mlx5_0:1"), from /sys/class/infiniband.
std::vector<std::string> RdmaPorts();

// UCX_NET_DEVICES for a data plane on `interface`: it and every RDMA port (verbs do not listen
// on IP interfaces; leaving them out would cost an RDMA cluster its fabric).
std::string DataPlaneDevices(const std::string& interface);

}  // namespace mmx::transport
