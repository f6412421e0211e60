#include "model/cuda/cuda_stage_compute.h"

#include <mutex>
#include <optional>
#include <vector>

#include <cuda_runtime_api.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/cuda/kernels_cuda.h"
#include "model/cuda/cuda_layer_ops.h"
#include "model/cuda/device_weights.h"
#include "model/layer_recipe.h"

namespace mmx::model::cuda {
namespace kc = ::mmx::kernels::cuda;
namespace {

// Buffer keys of this file (above CudaLayerOps' own).
enum : int { kX = 1000, kResidual, kRows, kOut, kIds, kLogits };

class CudaStageCompute final : public StageCompute {
 public:
  // `ranks`: the collective of this GPU's rank when the weights are a rank's slice (borrowed),
  // else null.
  CudaStageCompute(const WeightsView& host, std::unique_ptr<CudaLayerOps> ops, RankCollective* ranks, std::string name)
      : host_(host), ops_(std::move(ops)), ranks_(ranks), name_(std::move(name)) {}

  // Bytes Upload copies for these weights.
  static int64_t UploadBytes(const WeightsView& w) {
    int64_t total = 0;
    if (w.embedding) total += WeightBytes(*w.embedding);
    if (w.attention) for (const auto& b : *w.attention) total += AttentionBlockUploadBytes(b);
    if (w.experts) for (const auto& m : *w.experts) total += ExpertsUploadBytes(m);
    if (w.tail) total += TailUploadBytes(*w.tail);
    return total;
  }

  // Progress as (done_before + bytes copied here, grand_total): several ranks share one bar.
  absl::Status Upload(const UploadProgressFn& progress, int64_t done_before, int64_t grand_total) {
    const ModelConfig& c = *host_.config;
    if (progress) progress(done_before, grand_total);
    DeviceWeightUploader up(ops_->device(), [&](int64_t done) {
      if (progress) progress(done_before + done, grand_total);
    });
    if (host_.embedding) {
      MMX_ASSIGN_OR_RETURN(embedding_, up.Embedding(*host_.embedding));
    }
    if (host_.attention) {
      for (const auto& b : *host_.attention) {
        MMX_ASSIGN_OR_RETURN(DeviceAttentionBlockWeights d, up.AttentionBlock(b));
        attention_.push_back(std::move(d));
      }
    }
    if (host_.experts) {
      experts_.resize(c.num_hidden_layers);
      for (size_t l = 0; l < host_.experts->size(); ++l) {
        MMX_ASSIGN_OR_RETURN(experts_[l], up.Experts((*host_.experts)[l]));
      }
    }
    if (host_.tail) {
      MMX_ASSIGN_OR_RETURN(tail_, up.Tail(*host_.tail));
    }
    weight_bytes_ = up.bytes();
    buffers_ = up.TakeBuffers();
    // The copies ran on the legacy stream (cudaMemcpy from pageable memory may return before its
    // DMA lands) and the compute stream is non-blocking, so it never waits for them: wait here,
    // once, before the first kernel can read a weight.
    MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(ops_->device()));
    MMX_CUDA_RETURN_IF_ERROR(cudaDeviceSynchronize());
    return absl::OkStatus();
  }

  std::string device_name() const override { return name_; }
  int64_t device_weight_bytes() const override { return weight_bytes_; }

  absl::StatusOr<std::unique_ptr<SequenceState>> NewSequence(int first_layer, int end_layer, DType kv_dtype) override {
    std::lock_guard<std::mutex> lock(mu_);
    MMX_ASSIGN_OR_RETURN(std::unique_ptr<SequenceState> state, ops_->NewSequence(first_layer, end_layer, kv_dtype));
    MMX_RETURN_IF_ERROR(ops_->Sync());
    return state;
  }

  absl::Status Embed(const int32_t* ids, int64_t n, float* x) override {
    if (!embedding_) return absl::FailedPreconditionError("received tokens but holds no embedding");
    std::lock_guard<std::mutex> lock(mu_);
    MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(ops_->device()));
    const int64_t H = host_.config->hidden_size;
    MMX_ASSIGN_OR_RETURN(void* d_ids, ops_->Buffer(kIds, n * sizeof(int32_t)));
    MMX_ASSIGN_OR_RETURN(void* d_x, ops_->Buffer(kX, n * H * sizeof(float)));
    MMX_RETURN_IF_ERROR(ops_->Upload(ids, n * sizeof(int32_t), d_ids));
    MMX_RETURN_IF_ERROR(kc::EmbedRows(*embedding_, static_cast<const int32_t*>(d_ids), n, static_cast<float*>(d_x),
                                      ops_->stream()));
    MMX_RETURN_IF_ERROR(ops_->Download(d_x, n * H * sizeof(float), x));
    return ops_->Sync();
  }

  absl::Status AttentionBlock(int layer, const BatchLayout& batch, float* x, std::vector<float>* residual,
                              Routing* routing) override {
    const ModelConfig& c = *host_.config;
    if (layer < host_.first_layer || layer >= host_.first_layer + static_cast<int>(attention_.size())) {
      return absl::FailedPreconditionError("does not hold this attention layer");
    }
    std::lock_guard<std::mutex> lock(mu_);
    MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(ops_->device()));
    const size_t bytes = batch.num_tokens * c.hidden_size * sizeof(float);
    MMX_ASSIGN_OR_RETURN(void* d_x, ops_->Buffer(kX, bytes));
    float* d_residual = nullptr;
    if (!c.postnorm) {
      MMX_ASSIGN_OR_RETURN(void* r, ops_->Buffer(kResidual, bytes));
      d_residual = static_cast<float*>(r);
    }
    MMX_RETURN_IF_ERROR(ops_->Upload(x, bytes, d_x));
    absl::Status st = recipe::AttentionBlock(*ops_, c, attention_[layer - host_.first_layer], batch,
                                             static_cast<float*>(d_x), d_residual, routing, ranks_);
    if (st.ok()) st = ops_->Download(d_x, bytes, x);
    if (c.postnorm) {
      residual->clear();
    } else if (st.ok()) {
      residual->resize(batch.num_tokens * c.hidden_size);
      st = ops_->Download(d_residual, bytes, residual->data());
    }
    // Sync on failure too: it leaves the stream idle and the arena free for the next call, and
    // completes (or drops) a download already queued into x, so that none is left to land in a
    // host buffer after this call has returned.
    const absl::Status synced = ops_->Sync();
    MMX_RETURN_IF_ERROR(st);
    return synced;
  }

  absl::StatusOr<int64_t> ExpertPairs(int layer, const float* rows, const int* expert_ids, const float* weights,
                                      int64_t n, float* out) override {
    const ModelConfig& c = *host_.config;
    if (layer < 0 || layer >= static_cast<int>(experts_.size())) {
      return absl::FailedPreconditionError("holds no experts of this layer");
    }
    std::lock_guard<std::mutex> lock(mu_);
    MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(ops_->device()));
    const size_t bytes = n * c.hidden_size * sizeof(float);
    MMX_ASSIGN_OR_RETURN(void* d_rows, ops_->Buffer(kRows, bytes));
    MMX_ASSIGN_OR_RETURN(void* d_out, ops_->Buffer(kOut, bytes));
    MMX_RETURN_IF_ERROR(ops_->Upload(rows, bytes, d_rows));
    absl::StatusOr<int64_t> read = recipe::ExpertPairs(*ops_, c, experts_[layer], static_cast<const float*>(d_rows),
                                                       expert_ids, weights, n, static_cast<float*>(d_out));
    if (!read.ok()) {
      (void)ops_->Sync();
      return read.status();
    }
    MMX_RETURN_IF_ERROR(ops_->Download(d_out, bytes, out));
    MMX_RETURN_IF_ERROR(ops_->Sync());
    return *read;
  }

  absl::Status Logits(const float* x, const std::vector<int64_t>& rows, float* logits) override {
    return RunTail(x, rows, host_.config->vocab_size, logits, /*norm_only=*/false);
  }
  absl::Status FinalNorm(const float* x, const std::vector<int64_t>& rows, float* h) override {
    return RunTail(x, rows, host_.config->hidden_size, h, /*norm_only=*/true);
  }


 private:
  // Final norm (and lm_head unless norm_only) of the given rows of x [T, H] on the GPU: out
  // [rows.size(), width] in host memory.
  absl::Status RunTail(const float* x, const std::vector<int64_t>& rows, int64_t width, float* out, bool norm_only) {
    if (!tail_) return absl::FailedPreconditionError("routed the tail but holds no lm_head");
    if (rows.empty()) return absl::OkStatus();
    const ModelConfig& c = *host_.config;
    std::lock_guard<std::mutex> lock(mu_);
    MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(ops_->device()));
    // x has at least max(rows) + 1 rows; only those are uploaded.
    int64_t T = 0;
    for (int64_t r : rows) T = std::max(T, r + 1);
    const size_t x_bytes = T * c.hidden_size * sizeof(float);
    const size_t out_bytes = rows.size() * width * sizeof(float);
    MMX_ASSIGN_OR_RETURN(void* d_x, ops_->Buffer(kX, x_bytes));
    MMX_ASSIGN_OR_RETURN(void* d_out, ops_->Buffer(kLogits, out_bytes));
    MMX_RETURN_IF_ERROR(ops_->Upload(x, x_bytes, d_x));
    const float* dx = static_cast<const float*>(d_x);
    float* dout = static_cast<float*>(d_out);
    absl::Status st = norm_only ? recipe::FinalNorm(*ops_, c, *tail_, dx, rows, dout)
                                : recipe::Logits(*ops_, c, *tail_, dx, rows, dout);
    if (!st.ok()) {
      (void)ops_->Sync();
      return st;
    }
    MMX_RETURN_IF_ERROR(ops_->Download(d_out, out_bytes, out));
    return ops_->Sync();
  }
  WeightsView host_;
  std::unique_ptr<CudaLayerOps> ops_;
  RankCollective* ranks_;
  std::string name_;
  std::mutex mu_;  // the worker's step and expert threads share the stream and scratch
  std::optional<kernels::WeightView> embedding_;
  std::vector<DeviceAttentionBlockWeights> attention_;
  std::vector<DeviceMoeWeights> experts_;
  std::optional<DeviceTailWeights> tail_;
  std::vector<kc::DeviceBuffer> buffers_;  // the uploaded matrices
  int64_t weight_bytes_ = 0;
};

}  // namespace

absl::Status CheckDeviceExists(int device) {
  MMX_ASSIGN_OR_RETURN(const int count, kc::DeviceCount());
  if (device >= count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device cuda:", device, ": this machine has ", count, " CUDA device", count == 1 ? "" : "s",
        count == 0 ? " (no GPU or no driver); use --device cpu" : absl::StrCat(" (cuda:0 to cuda:", count - 1, ")")));
  }
  return absl::OkStatus();
}

absl::StatusOr<DeviceInfo> QueryDevice(int device) {
  MMX_RETURN_IF_ERROR(CheckDeviceExists(device));
  MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  cudaDeviceProp props;
  MMX_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&props, device));
  DeviceInfo info;
  info.name = absl::StrCat("cuda:", device, " (", props.name, ")");
  size_t free_bytes = 0, total_bytes = 0;
  MMX_CUDA_RETURN_IF_ERROR(cudaMemGetInfo(&free_bytes, &total_bytes));
  info.free_bytes = static_cast<int64_t>(free_bytes);
  info.total_bytes = static_cast<int64_t>(total_bytes);
  // Bandwidth: a few device-to-device copies of 256 MiB (each reads and writes every byte).
  constexpr size_t kBytes = size_t{256} << 20;
  MMX_ASSIGN_OR_RETURN(kc::DeviceBuffer a, kc::DeviceBuffer::Allocate(kBytes, device));
  MMX_ASSIGN_OR_RETURN(kc::DeviceBuffer b, kc::DeviceBuffer::Allocate(kBytes, device));
  // Events owned here so that every error return below destroys them.
  struct Events {
    cudaEvent_t start = nullptr, stop = nullptr;
    ~Events() {
      if (start != nullptr) cudaEventDestroy(start);
      if (stop != nullptr) cudaEventDestroy(stop);
    }
  } events;
  MMX_CUDA_RETURN_IF_ERROR(cudaEventCreate(&events.start));
  MMX_CUDA_RETURN_IF_ERROR(cudaEventCreate(&events.stop));
  MMX_CUDA_RETURN_IF_ERROR(cudaMemcpy(b.data(), a.data(), kBytes, cudaMemcpyDeviceToDevice));  // warm-up
  MMX_CUDA_RETURN_IF_ERROR(cudaEventRecord(events.start));
  constexpr int kCopies = 5;
  for (int i = 0; i < kCopies; ++i) {
    MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(b.data(), a.data(), kBytes, cudaMemcpyDeviceToDevice));
  }
  MMX_CUDA_RETURN_IF_ERROR(cudaEventRecord(events.stop));
  MMX_CUDA_RETURN_IF_ERROR(cudaEventSynchronize(events.stop));
  float ms = 0;
  MMX_CUDA_RETURN_IF_ERROR(cudaEventElapsedTime(&ms, events.start, events.stop));
  if (ms > 0) info.bandwidth_gbs = 2.0 * kCopies * static_cast<double>(kBytes) / (ms * 1e-3) / 1e9;
  return info;
}

int64_t CudaUploadBytes(const WeightsView& weights) { return CudaStageCompute::UploadBytes(weights); }

absl::StatusOr<std::unique_ptr<StageCompute>> CreateCudaStageCompute(int device, const WeightsView& weights,
                                                                     kernels::ActivationPrecision precision,
                                                                     const UploadProgressFn& progress,
                                                                     const CudaRank& rank) {
  MMX_RETURN_IF_ERROR(CheckDeviceExists(device));
  MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  cudaDeviceProp props;
  MMX_CUDA_RETURN_IF_ERROR(cudaGetDeviceProperties(&props, device));
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<CudaLayerOps> ops, CudaLayerOps::Create(device, *weights.config, precision));
  RankCollective* collective = nullptr;
  if (rank.collective) {
    MMX_ASSIGN_OR_RETURN(collective, rank.collective(ops->stream()));
    ops->set_collective(collective);
  }
  auto compute = std::make_unique<CudaStageCompute>(weights, std::move(ops), collective,
                                                    absl::StrCat("cuda:", device, " (", props.name, ")"));
  const int64_t total = rank.progress_total > 0 ? rank.progress_total : CudaStageCompute::UploadBytes(weights);
  MMX_RETURN_IF_ERROR(compute->Upload(progress, rank.progress_done_before, total));
  return compute;
}

}  // namespace mmx::model::cuda
