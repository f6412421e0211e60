#include "model/device_spec.h"

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace mmx::model {
namespace {

absl::Status Bad(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("--device '", text, "': ", why,
                                                 "; use cpu, cuda (the first GPU), cuda:N or cuda:N,M,..."));
}

}  // namespace

std::string DeviceSpec::ToString() const {
  if (kind == Kind::kCpu) return "cpu";
  return absl::StrCat("cuda:", absl::StrJoin(ordinals, ","));
}

absl::StatusOr<DeviceSpec> ParseDeviceSpec(absl::string_view text) {
  DeviceSpec spec;
  if (text == "cpu") return spec;
  spec.kind = DeviceSpec::Kind::kCuda;
  if (text == "cuda") {
    spec.ordinals = {0};
    return spec;
  }
  if (!absl::ConsumePrefix(&text, "cuda:")) return Bad(text, "unknown device");
  if (text.empty()) return Bad("cuda:", "no GPU ordinal after 'cuda:'");
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    int ordinal = -1;
    if (!absl::SimpleAtoi(part, &ordinal) || ordinal < 0) {
      return Bad(absl::StrCat("cuda:", text), absl::StrCat("'", part, "' is not a GPU ordinal (0, 1, ...)"));
    }
    if (std::find(spec.ordinals.begin(), spec.ordinals.end(), ordinal) != spec.ordinals.end()) {
      return Bad(absl::StrCat("cuda:", text), absl::StrCat("GPU ", ordinal, " is named twice"));
    }
    spec.ordinals.push_back(ordinal);
  }
  return spec;
}

}  // namespace mmx::model
