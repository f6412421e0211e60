// The worker join token: a shared secret a worker shows the coordinator (gRPC metadata on its
// control session) before it may register. Without it anyone who can reach the control port
// could claim an entry, and with it the data-plane cluster token and every peer's address.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace mmx::rpc {

// The metadata key the worker sends its token under.
inline constexpr char kJoinTokenMetadata[] = "mmx-join-token";
// Shorter tokens are refused: guessable. `openssl rand -hex 32` makes a good one.
inline constexpr size_t kMinJoinTokenBytes = 16;

// The token in `path`: the file's one line, surrounding whitespace removed. InvalidArgument
// for an unreadable, empty, multi-line or too short file, or characters gRPC metadata cannot
// carry (printable ASCII only).
absl::StatusOr<std::string> ReadJoinTokenFile(const std::string& path);

// Whether `a` equals `b`, in time that depends only on their lengths.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace mmx::rpc
