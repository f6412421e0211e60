#include "transport/ucs_status.h"

#include "absl/strings/str_cat.h"

namespace mmx::transport {
namespace {

absl::StatusCode CodeFor(ucs_status_t status) {
  if (UCS_IS_LINK_ERROR(status) || UCS_IS_ENDPOINT_ERROR(status)) {
    return status == UCS_ERR_ENDPOINT_TIMEOUT ? absl::StatusCode::kDeadlineExceeded
                                              : absl::StatusCode::kUnavailable;
  }
  switch (status) {
    case UCS_ERR_UNREACHABLE:
    case UCS_ERR_NOT_CONNECTED:
    case UCS_ERR_CONNECTION_RESET:
    case UCS_ERR_REJECTED:
    case UCS_ERR_IO_ERROR:
    case UCS_ERR_NO_DEVICE:
    case UCS_ERR_SOME_CONNECTS_FAILED:
    case UCS_ERR_NO_RESOURCE:
    case UCS_ERR_BUSY:
      return absl::StatusCode::kUnavailable;
    case UCS_ERR_TIMED_OUT:
      return absl::StatusCode::kDeadlineExceeded;
    case UCS_ERR_CANCELED:
      return absl::StatusCode::kCancelled;
    case UCS_ERR_NO_MEMORY:
    case UCS_ERR_EXCEEDS_LIMIT:
    case UCS_ERR_SHMEM_SEGMENT:
      return absl::StatusCode::kResourceExhausted;
    case UCS_ERR_INVALID_PARAM:
    case UCS_ERR_INVALID_ADDR:
    case UCS_ERR_OUT_OF_RANGE:
    case UCS_ERR_BUFFER_TOO_SMALL:
      return absl::StatusCode::kInvalidArgument;
    case UCS_ERR_NOT_IMPLEMENTED:
    case UCS_ERR_UNSUPPORTED:
      return absl::StatusCode::kUnimplemented;
    case UCS_ERR_MESSAGE_TRUNCATED:
      return absl::StatusCode::kDataLoss;
    case UCS_ERR_ALREADY_EXISTS:
      return absl::StatusCode::kAlreadyExists;
    case UCS_ERR_NO_ELEM:
      return absl::StatusCode::kNotFound;
    default:
      return absl::StatusCode::kInternal;
  }
}

}  // namespace

absl::Status UcsStatus(ucs_status_t status, absl::string_view context) {
  if (status == UCS_OK || status == UCS_INPROGRESS) return absl::OkStatus();
  return absl::Status(CodeFor(status), absl::StrCat(context, ": ", ucs_status_string(status),
                                                    " (UCS ", static_cast<int>(status), ")"));
}

}  // namespace mmx::transport
