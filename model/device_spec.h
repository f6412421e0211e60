// The `--device` argument of a worker: "cpu", "cuda" (= cuda:0), "cuda:N", or "cuda:N,M,..."
// (one worker over several GPUs of its machine).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace mmx::model {

struct DeviceSpec {
  enum class Kind { kCpu, kCuda };
  Kind kind = Kind::kCpu;
  std::vector<int> ordinals;  // kCuda: distinct GPU ordinals, in the order given; empty for kCpu

  bool is_cuda() const { return kind == Kind::kCuda; }
  // The canonical spelling: "cpu", "cuda:0", "cuda:0,1".
  std::string ToString() const;
};

// kInvalidArgument naming the accepted forms for anything else (empty, "gpu", "cuda:", "cuda:-1",
// "cuda:0,0", "cuda:x").
absl::StatusOr<DeviceSpec> ParseDeviceSpec(absl::string_view text);

}  // namespace mmx::model
