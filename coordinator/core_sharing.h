// Whether the workers of a cluster share cores. Workers on one host that together ask for more
// threads than the host has cores take turns on the same cores: a second micro-batch in flight
// cannot then overlap one worker's attention with another's experts (MegaScale-Infer's
// ping-pong needs hardware that would otherwise idle), it only makes each micro-batch read the
// experts' weights again. The scheduler's automatic micro-batch count follows from this.
#pragma once

#include <string>
#include <vector>

#include "mmx/v1/control.pb.h"

namespace mmx::coordinator {

// "" when no host is oversubscribed; otherwise a description of the first one that is, e.g.
// "host 'box' runs 4 workers with 8 threads on 2 cores". Workers that did not report a host or
// their cores (older workers) are assumed to have a host of their own.
std::string DescribeCoreSharing(const std::vector<v1::Register>& workers);

}  // namespace mmx::coordinator
