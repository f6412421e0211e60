// UcsStatus: converts a native UCX status into an absl::Status with the call that produced it,
// e.g. UcsStatus(status, "ucp_ep_create") -> Unavailable("ucp_ep_create: Destination is
// unreachable (UCS -6)"). One place decides which absl code each UCX failure maps to.
#pragma once

#include <ucs/type/status.h>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace mmx::transport {

// OK for UCS_OK (and UCS_INPROGRESS, which is not a failure). Otherwise: peer, link and
// connection failures -> Unavailable; timeouts -> DeadlineExceeded; UCS_ERR_CANCELED ->
// Cancelled; out of memory or limits -> ResourceExhausted; bad parameters or addresses ->
// InvalidArgument; unsupported -> Unimplemented; truncation -> DataLoss; anything else ->
// Internal. The message is "<context>: <UCX's text> (UCS <code>)". Thread-safe.
absl::Status UcsStatus(ucs_status_t status, absl::string_view context);

}  // namespace mmx::transport
