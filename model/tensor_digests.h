// Content digests of a checkpoint's tensors (SHA-256 of each tensor's bytes), so that workers
// prove they loaded the coordinator's weights and not only the same shapes: the fingerprint
// (checkpoint_fingerprint.h) covers config.json and every header, a digest the data itself.
//
// The coordinator computes every tensor's digest once and keeps them in a cache file beside the
// checkpoint (or in its state directory); a worker digests the tensors it loaded, as it pages
// them in, and reports them with Ready.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint.h"

namespace mmx::model {

struct TensorDigest {
  std::string file;    // the shard file's name (no directory)
  std::string sha256;  // 32 bytes
};
using TensorDigests = std::map<std::string, TensorDigest>;  // by tensor name

std::string Sha256(const void* data, size_t size);

// The digests of `names` (each must be in `checkpoint`), over ThreadPool::Default().
absl::StatusOr<TensorDigests> ComputeTensorDigests(const Checkpoint& checkpoint,
                                                   const std::vector<std::string>& names);

// Every tensor's digest. Read from `cache_path` when that file exists and records each shard
// file with its current size and modification time; otherwise computed and written there
// ("" = no cache; a cache that cannot be written is skipped). `*computed` says which.
absl::StatusOr<TensorDigests> CachedTensorDigests(const Checkpoint& checkpoint, const std::string& cache_path,
                                                  bool* computed = nullptr);

// Where the coordinator caches a checkpoint's digests: `state_dir` (keyed by the checkpoint's
// fingerprint) when given, else the checkpoint directory when it can write there, else ""
// (no cache).
std::string DigestCachePath(const Checkpoint& checkpoint, const std::string& state_dir);

// OK when every tensor in `reported` has the digest `expected` records and `reported` is not
// empty; else FailedPrecondition naming the first tensor that differs and the worker's file.
absl::Status CompareTensorDigests(const TensorDigests& expected, const TensorDigests& reported);

}  // namespace mmx::model
