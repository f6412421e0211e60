#include "model/checkpoint_fingerprint.h"

#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace mmx::model {
namespace {

uint64_t Fnv1a(uint64_t hash, const std::string& bytes) {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace

std::string CheckpointFingerprint(const Checkpoint& checkpoint) {
  uint64_t hash = 14695981039346656037ull;
  hash = Fnv1a(hash, checkpoint.config().ToJson());
  for (const std::string& name : checkpoint.TensorNames()) {  // sorted
    const TensorInfo* info = checkpoint.Find(name);
    hash = Fnv1a(hash, absl::StrCat(name, ":", DTypeName(info->dtype), "[", absl::StrJoin(info->shape, ","), "];"));
  }
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

}  // namespace mmx::model
