// The weights of a CUDA stage in GPU memory: the same structs as model/weights.h, field by
// field (model/layer_recipe.h reads them by name), with every matrix's data and every vector
// on the device. Uploaded once from the host views (the checkpoint's mmap) at load.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/weights.h"

namespace mmx::model::cuda {

// A float vector in device memory; data() is a device pointer.
class DeviceFloats {
 public:
  DeviceFloats() = default;
  explicit DeviceFloats(kernels::cuda::DeviceBuffer buffer, int64_t size) : buffer_(std::move(buffer)), size_(size) {}
  const float* data() const { return buffer_.as<const float>(); }
  int64_t size() const { return size_; }

 private:
  kernels::cuda::DeviceBuffer buffer_;
  int64_t size_ = 0;
};

struct DeviceLightningWeights {
  kernels::WeightView qkv, gate, out;
  DeviceFloats norm, slopes;
};
struct DeviceSoftmaxWeights {
  kernels::WeightView q, k, v, o;
  DeviceFloats inv_freq;
};
struct DeviceAttentionBlockWeights {
  int layer = 0;
  AttentionKind kind = AttentionKind::kLightning;
  DeviceFloats input_norm, post_norm;
  DeviceLightningWeights lightning;
  DeviceSoftmaxWeights softmax;
  kernels::WeightView router;
};
struct DeviceExpertWeights {
  kernels::WeightView w1, w3, w2;
  bool loaded() const { return w1.data != nullptr; }
};
struct DeviceMoeWeights {
  int layer = 0;
  std::vector<DeviceExpertWeights> experts;
};
struct DeviceTailWeights {
  DeviceFloats final_norm;
  kernels::WeightView lm_head;
};

// Owns the device memory of uploaded matrices and copies host weights into it, counting bytes
// for progress. Matrices must be BF16 (what the GPU GEMMs take); other dtypes get a status
// naming the tensor's role and what to change.
class DeviceWeightUploader {
 public:
  using ProgressFn = std::function<void(int64_t done)>;
  DeviceWeightUploader(int device, ProgressFn progress) : device_(device), progress_(std::move(progress)) {}

  absl::StatusOr<kernels::WeightView> Matrix(const kernels::WeightView& host, const char* what);
  absl::StatusOr<DeviceFloats> Floats(const std::vector<float>& host, const char* what);
  // Embedding rows are gathered, not multiplied: BF16, F16 and F32 all work.
  absl::StatusOr<kernels::WeightView> Embedding(const kernels::WeightView& host);

  absl::StatusOr<DeviceAttentionBlockWeights> AttentionBlock(const AttentionBlockWeights& host);
  absl::StatusOr<DeviceMoeWeights> Experts(const MoeWeights& host);
  absl::StatusOr<DeviceTailWeights> Tail(const TailWeights& host);

  int64_t bytes() const { return done_; }
  std::vector<kernels::cuda::DeviceBuffer> TakeBuffers() { return std::move(buffers_); }

 private:
  absl::StatusOr<kernels::WeightView> Copy(const kernels::WeightView& host, const char* what);
  // `bytes` of host memory into a new device buffer this uploader keeps; its device address.
  absl::StatusOr<void*> CopyBytes(const void* host, size_t bytes, const char* what);

  int device_;
  ProgressFn progress_;
  int64_t done_ = 0;
  std::vector<kernels::cuda::DeviceBuffer> buffers_;
};

// Bytes DeviceWeightUploader will copy for these host weights (the progress total).
int64_t AttentionBlockUploadBytes(const AttentionBlockWeights& w);
int64_t ExpertsUploadBytes(const MoeWeights& w);
int64_t TailUploadBytes(const TailWeights& w);

}  // namespace mmx::model::cuda
