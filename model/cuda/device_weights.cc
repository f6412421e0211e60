#include "model/cuda/device_weights.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::model::cuda {
namespace kc = ::mmx::kernels::cuda;

namespace {
int64_t MatrixBytes(const kernels::WeightView& w) {
  if (w.data == nullptr) return 0;
  // int8: the per-row fp32 scales go up too.
  return WeightBytes(w) + (w.dtype == DType::kI8 ? w.rows * static_cast<int64_t>(sizeof(float)) : 0);
}
int64_t FloatBytes(const std::vector<float>& v) { return static_cast<int64_t>(v.size() * sizeof(float)); }
}  // namespace

absl::StatusOr<void*> DeviceWeightUploader::CopyBytes(const void* host, size_t bytes, const char* what) {
  absl::StatusOr<kc::DeviceBuffer> buffer = kc::DeviceBuffer::Allocate(bytes, device_);
  if (!buffer.ok()) {
    return absl::Status(buffer.status().code(), absl::StrCat("uploading ", what, ": ", buffer.status().message()));
  }
  MMX_RETURN_IF_ERROR(buffer->CopyFromHost(host, bytes));
  void* device = buffer->data();
  buffers_.push_back(*std::move(buffer));
  done_ += static_cast<int64_t>(bytes);
  if (progress_) progress_(done_);
  return device;
}

absl::StatusOr<kernels::WeightView> DeviceWeightUploader::Copy(const kernels::WeightView& host, const char* what) {
  const size_t bytes = static_cast<size_t>(host.rows * host.cols * static_cast<int64_t>(DTypeSize(host.dtype)));
  kernels::WeightView device = host;
  MMX_ASSIGN_OR_RETURN(device.data, CopyBytes(host.data, bytes, what));
  return device;
}

absl::StatusOr<kernels::WeightView> DeviceWeightUploader::Matrix(const kernels::WeightView& host, const char* what) {
  if (host.data == nullptr) return host;  // not held (an expert of another host)
  if (host.dtype != DType::kBF16 && host.dtype != DType::kI8) {
    return absl::UnimplementedError(absl::StrCat("the CUDA kernels multiply BF16 and int8 weights, and ", what,
                                                 " is ", DTypeName(host.dtype), " (convert the checkpoint to BF16)"));
  }
  MMX_ASSIGN_OR_RETURN(kernels::WeightView device, Copy(host, what));
  if (host.dtype == DType::kI8) {
    // Weight-only int8: the per-row scales go up beside the weights.
    if (host.scales == nullptr) return absl::InternalError(absl::StrCat(what, ": int8 weights without scales"));
    MMX_ASSIGN_OR_RETURN(void* scales, CopyBytes(host.scales, static_cast<size_t>(host.rows) * sizeof(float), what));
    device.scales = static_cast<const float*>(scales);
  }
  return device;
}

absl::StatusOr<kernels::WeightView> DeviceWeightUploader::Embedding(const kernels::WeightView& host) {
  if (host.dtype == DType::kI8) return absl::UnimplementedError("an int8 embedding cannot be uploaded to a GPU");
  return Copy(host, "the embedding");
}

absl::StatusOr<DeviceFloats> DeviceWeightUploader::Floats(const std::vector<float>& host, const char* what) {
  const size_t bytes = host.size() * sizeof(float);
  absl::StatusOr<kc::DeviceBuffer> buffer = kc::DeviceBuffer::Allocate(bytes, device_);
  if (!buffer.ok()) {
    return absl::Status(buffer.status().code(), absl::StrCat("uploading ", what, ": ", buffer.status().message()));
  }
  MMX_RETURN_IF_ERROR(buffer->CopyFromHost(host.data(), bytes));
  done_ += static_cast<int64_t>(bytes);
  if (progress_) progress_(done_);
  return DeviceFloats(*std::move(buffer), static_cast<int64_t>(host.size()));
}

absl::StatusOr<DeviceAttentionBlockWeights> DeviceWeightUploader::AttentionBlock(const AttentionBlockWeights& h) {
  DeviceAttentionBlockWeights d;
  d.layer = h.layer;
  d.kind = h.kind;
  MMX_ASSIGN_OR_RETURN(d.input_norm, Floats(h.input_norm, "input_layernorm"));
  MMX_ASSIGN_OR_RETURN(d.post_norm, Floats(h.post_norm, "post_attention_layernorm"));
  if (h.kind == AttentionKind::kLightning) {
    MMX_ASSIGN_OR_RETURN(d.lightning.qkv, Matrix(h.lightning.qkv, "qkv_proj"));
    MMX_ASSIGN_OR_RETURN(d.lightning.gate, Matrix(h.lightning.gate, "output_gate"));
    MMX_ASSIGN_OR_RETURN(d.lightning.out, Matrix(h.lightning.out, "out_proj"));
    MMX_ASSIGN_OR_RETURN(d.lightning.norm, Floats(h.lightning.norm, "the lightning norm"));
    MMX_ASSIGN_OR_RETURN(d.lightning.slopes, Floats(h.lightning.slopes, "the lightning slopes"));
  } else {
    MMX_ASSIGN_OR_RETURN(d.softmax.q, Matrix(h.softmax.q, "q_proj"));
    MMX_ASSIGN_OR_RETURN(d.softmax.k, Matrix(h.softmax.k, "k_proj"));
    MMX_ASSIGN_OR_RETURN(d.softmax.v, Matrix(h.softmax.v, "v_proj"));
    MMX_ASSIGN_OR_RETURN(d.softmax.o, Matrix(h.softmax.o, "o_proj"));
    MMX_ASSIGN_OR_RETURN(d.softmax.inv_freq, Floats(h.softmax.inv_freq, "the RoPE frequencies"));
  }
  MMX_ASSIGN_OR_RETURN(d.router, Matrix(h.router, "the router (block_sparse_moe.gate)"));
  return d;
}

absl::StatusOr<DeviceMoeWeights> DeviceWeightUploader::Experts(const MoeWeights& h) {
  DeviceMoeWeights d;
  d.layer = h.layer;
  d.experts.resize(h.experts.size());
  for (size_t e = 0; e < h.experts.size(); ++e) {
    if (!h.experts[e].loaded()) continue;
    MMX_ASSIGN_OR_RETURN(d.experts[e].w1, Matrix(h.experts[e].w1, "an expert's w1"));
    MMX_ASSIGN_OR_RETURN(d.experts[e].w3, Matrix(h.experts[e].w3, "an expert's w3"));
    MMX_ASSIGN_OR_RETURN(d.experts[e].w2, Matrix(h.experts[e].w2, "an expert's w2"));
  }
  return d;
}

absl::StatusOr<DeviceTailWeights> DeviceWeightUploader::Tail(const TailWeights& h) {
  DeviceTailWeights d;
  MMX_ASSIGN_OR_RETURN(d.final_norm, Floats(h.final_norm, "model.norm"));
  MMX_ASSIGN_OR_RETURN(d.lm_head, Matrix(h.lm_head, "lm_head"));
  return d;
}

int64_t AttentionBlockUploadBytes(const AttentionBlockWeights& w) {
  return FloatBytes(w.input_norm) + FloatBytes(w.post_norm) + MatrixBytes(w.lightning.qkv) +
         MatrixBytes(w.lightning.gate) + MatrixBytes(w.lightning.out) + FloatBytes(w.lightning.norm) +
         FloatBytes(w.lightning.slopes) + MatrixBytes(w.softmax.q) + MatrixBytes(w.softmax.k) +
         MatrixBytes(w.softmax.v) + MatrixBytes(w.softmax.o) + FloatBytes(w.softmax.inv_freq) +
         MatrixBytes(w.router);
}

int64_t ExpertsUploadBytes(const MoeWeights& w) {
  int64_t total = 0;
  for (const ExpertWeights& e : w.experts) total += MatrixBytes(e.w1) + MatrixBytes(e.w3) + MatrixBytes(e.w2);
  return total;
}

int64_t TailUploadBytes(const TailWeights& w) { return FloatBytes(w.final_norm) + MatrixBytes(w.lm_head); }

}  // namespace mmx::model::cuda
