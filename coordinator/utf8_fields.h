// Every string in a client's request must be UTF-8. The API's proto is proto2 so that a request
// with bad bytes parses at all (proto3 would fail it inside gRPC as INTERNAL, without a word);
// this check then names the field, so the client learns what to fix.
#pragma once

#include "absl/status/status.h"
#include "google/protobuf/message.h"

namespace mmx::coordinator {

// OK, or InvalidArgument naming the first string field (as a path such as
// `requests[2].messages[0].content`) whose value is not valid UTF-8, and the byte offset of the
// first bad byte. The value itself is not echoed.
absl::Status CheckUtf8Fields(const google::protobuf::Message& message);

}  // namespace mmx::coordinator
