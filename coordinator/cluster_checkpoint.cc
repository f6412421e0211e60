// Cluster: whether a loaded worker holds the coordinator's checkpoint.
#include "absl/strings/str_cat.h"
#include "coordinator/cluster.h"

namespace mmx::coordinator {

absl::Status Cluster::SameCheckpoint(const v1::Ready& ready) const {
  if (ready.checkpoint_fingerprint() != fingerprint_) {
    return absl::FailedPreconditionError(absl::StrCat(
        "checkpoint differs from the coordinator's (fingerprint ", ready.checkpoint_fingerprint(), " vs ",
        fingerprint_, "): config.json or tensor headers are not the same model"));
  }
  if (tensor_digests_.empty()) return absl::OkStatus();
  model::TensorDigests reported;
  for (const v1::TensorDigest& d : ready.tensor_digests()) reported[d.name()] = {d.file(), d.sha256()};
  if (absl::Status same = model::CompareTensorDigests(tensor_digests_, reported); !same.ok()) {
    return absl::FailedPreconditionError(absl::StrCat("checkpoint data: ", same.message()));
  }
  return absl::OkStatus();
}

}  // namespace mmx::coordinator
