// Checkpoint: a Hugging Face checkpoint directory (config.json, safetensors shards, optional
// model.safetensors.index.json) opened without reading any tensor data. Shards are mmap'ed;
// a tensor's bytes are touched only when the caller reads them, so a worker that asks for its
// own tensors pages in only those.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/dtype.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/safetensors.h"

namespace mmx::model {

class Checkpoint {
 public:
  // Opens DIR: parses config.json and the index (or the single model.safetensors), and opens
  // and validates every shard's header (JSON well-formed, offsets inside the file, no overlap).
  // NotFound for a missing file, DataLoss for a corrupt/truncated one, InvalidArgument for a
  // config mmx refuses. Messages name the file and the tensor.
  static absl::StatusOr<std::unique_ptr<Checkpoint>> Open(const std::string& dir);

  const ModelConfig& config() const { return config_; }
  const std::string& dir() const { return dir_; }

  bool Has(const std::string& name) const;
  // The tensor's header entry, or nullptr if absent. No shape check.
  const TensorInfo* Find(const std::string& name) const;
  // All tensor names, sorted.
  std::vector<std::string> TensorNames() const;
  // The tensors Get (Matrix, VectorF32) has handed out, sorted: what a worker loaded.
  std::vector<std::string> TouchedTensors() const;

  // The tensor, checked to have exactly `shape`. NotFound if absent (names the tensor and the
  // file the index points at), InvalidArgument on a shape mismatch with the config.
  absl::StatusOr<TensorInfo> Get(const std::string& name, const std::vector<int64_t>& shape) const;

  // A 2-D tensor as a kernels::WeightView (no copy).
  absl::StatusOr<kernels::WeightView> Matrix(const std::string& name, int64_t rows,
                                             int64_t cols) const;
  // A 1-D tensor converted to fp32 (small tensors only: norms).
  absl::StatusOr<std::vector<float>> VectorF32(const std::string& name, int64_t n) const;

  // Checks every tensor present against the names and shapes config.json implies, and that each
  // expected tensor exists. Reads headers only.
  absl::Status ValidateAgainstConfig() const;

 private:
  Checkpoint() = default;

  std::string dir_;
  ModelConfig config_;
  std::vector<std::unique_ptr<SafetensorsFile>> files_;
  std::map<std::string, const SafetensorsFile*> where_;  // tensor name -> its shard
  mutable absl::Mutex touched_mu_;
  mutable std::set<std::string> touched_ ABSL_GUARDED_BY(touched_mu_);
};

// The names and shapes MODEL.md §6 gives for `config`, in a stable order.
std::vector<std::pair<std::string, std::vector<int64_t>>> ExpectedTensors(const ModelConfig& config);

}  // namespace mmx::model
