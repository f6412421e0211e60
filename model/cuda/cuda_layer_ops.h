// CudaLayerOps: the recipe's backend (model/layer_recipe.h) on one GPU. Activations and
// scratch live in device memory; the sequence state too (lightning states in a slot pool per
// layer, so that a decode batch updates every sequence's state in one launch; KV caches in pages
// of model/kv_cache.h's layout, fp32 or bf16, from a DevicePages pool: a growing sequence takes
// a page, its old rows never move). Everything is enqueued on one stream; host-side inputs the
// recipe passes (indices, scales, positions) go up through a pinned arena, and the routing comes
// down the same way (the one synchronisation inside a layer).
//
// Not thread-safe: CudaStageCompute serialises calls.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include <cublas_api.h>
#include <cuda_runtime_api.h>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "kernels/cuda/cublas_handle.h"
#include "kernels/cuda/device_buffer.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/cuda/device_pages.h"
#include "model/layers.h"
#include "model/rank_collective.h"
#include "model/scratch.h"
#include "model/sequence_state.h"

namespace mmx::model::cuda {

// Page-locked host memory handed out in pieces that stay valid until Reset(), so that several
// asynchronous copies can be in flight at once. Reset only after the stream has synchronised.
class PinnedArena {
 public:
  absl::StatusOr<void*> Take(size_t bytes);
  void Reset();

 private:
  std::vector<kernels::cuda::PinnedHostBuffer> blocks_;
  size_t used_ = 0;  // in blocks_.back()
};

// Hands out lightning-state slots; shared by the ops and the sequences that hold slots, so a
// sequence freed on any thread gives its slot back.
class SlotAllocator {
 public:
  int Acquire();
  void Release(int slot);
  int high_water() const;

 private:
  mutable std::mutex mu_;
  std::vector<int> free_;
  int next_ = 0;
};

// One sequence's state on the device: its slot in the lightning pools and its KV caches.
class CudaSequenceState final : public DeviceSequenceState {
 public:
  // One softmax layer's cache: pages of kKvBlockTokens rows of K and of V, and the device page
  // tables (arrays of the pages' addresses, the attention kernels' input) of table_capacity
  // entries each.
  struct Kv {
    std::vector<void*> k_pages, v_pages;
    void* k_table = nullptr;
    void* v_table = nullptr;
    int64_t table_capacity = 0;
  };
  CudaSequenceState(std::shared_ptr<SlotAllocator> slots, int slot, int64_t lightning_bytes,
                    std::shared_ptr<DevicePages> pages, size_t page_bytes)
      : slots_(std::move(slots)), slot_(slot), lightning_bytes_(lightning_bytes), pages_(std::move(pages)),
        page_bytes_(page_bytes) {}
  ~CudaSequenceState() override;

  // Lightning states and KV pages (the page tables, 8 bytes a page, are not counted).
  int64_t bytes() const override;
  int slot() const { return slot_; }
  std::map<int, Kv>& kv() { return kv_; }  // by layer
  size_t page_bytes() const { return page_bytes_; }
  DevicePages& pages() { return *pages_; }

 private:
  std::shared_ptr<SlotAllocator> slots_;
  int slot_;
  int64_t lightning_bytes_;
  std::shared_ptr<DevicePages> pages_;
  size_t page_bytes_;  // of one K (or V) page
  std::map<int, Kv> kv_;
};

class CudaLayerOps {
 public:
  // Owns a stream and a cuBLAS handle on `device` (its current device must be `device`).
  static absl::StatusOr<std::unique_ptr<CudaLayerOps>> Create(int device, const ModelConfig& config,
                                                               kernels::ActivationPrecision precision);
  ~CudaLayerOps();

  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

  // ---- the recipe's operations (model/layer_recipe.h), all on device pointers ----
  float* Scratch(Slot slot, size_t n);
  double* RowSums(int64_t T);
  absl::Status Gemm(const float* x, int64_t T, const kernels::WeightView& w, float* y);
  absl::Status GemmGroup(const kernels::GemmProblem* problems, int64_t count);
  absl::Status RmsNorm(const float* x, int64_t T, int64_t n, const float* gamma, float eps, float* out);
  absl::Status RowSumOfSquares(const float* x, int64_t T, int64_t width, double* sums);
  absl::Status NormalizeRows(const float* x, int64_t T, int64_t width, const double* sums, int64_t full_width,
                             const float* gamma, float eps, float* out);
  absl::Status SiluInPlace(float* x, int64_t n);
  absl::Status SiluMul(const float* gate, const float* up, int64_t n, float* out);
  absl::Status SigmoidMulInPlace(const float* gate, float* x, int64_t n);
  absl::Status Axpby(float alpha, const float* a, float beta, const float* b, int64_t n, float* out);
  absl::Status Copy(const float* src, int64_t n, float* dst);
  absl::Status ApplyRope(float* x, int64_t T, int heads, int head_dim, int rotary_dim, const BatchLayout& batch,
                         const float* inv_freq);
  absl::Status Lightning(const kernels::LightningShape& shape, const BatchLayout& batch, int layer, const float* qkv,
                         float* o);
  absl::Status AppendKv(SequenceState& state, int layer, const float* k, const float* v, int64_t n);
  absl::Status CausalAttention(const kernels::AttentionShape& shape, const float* q, int64_t n, SequenceState& state,
                               int layer, int64_t total_len, float* o);
  absl::Status RouterTopK(const float* logits, int64_t T, int E, int K, Routing* routing);
  absl::Status GatherRows(const float* src, const std::vector<int64_t>& index, int64_t width, float* dst);
  absl::Status ScaleScatterRows(const float* src, const std::vector<float>& scale, const std::vector<int64_t>& index,
                                int64_t width, float* dst);

  // ---- host <-> device, sequences ----
  // Enqueues a copy of `bytes` host bytes to `device_dst` (through the pinned arena: the host
  // buffer may be reused as soon as this returns).
  absl::Status Upload(const void* host, size_t bytes, void* device_dst);
  // Enqueues a copy of device bytes that lands in `host_dst` at the next Sync().
  absl::Status Download(const void* device_src, size_t bytes, void* host_dst);
  // Waits for the stream, completes the downloads, frees the arena for reuse.
  absl::Status Sync();
  // A device buffer of at least `bytes` for one of the ops' own uses (see the .cc's keys).
  absl::StatusOr<void*> Buffer(int key, size_t bytes);

  // A zeroed state for a new sequence over layers [first_layer, end_layer).
  absl::StatusOr<std::unique_ptr<SequenceState>> NewSequence(int first_layer, int end_layer, DType kv_dtype);

  // This GPU's rank collective, when it is one rank of a split (borrowed): Sync polls it while it
  // waits, so that an aborted group's communicator is aborted from this rank's thread.
  void set_collective(RankCollective* collective) { collective_ = collective; }

  // The first error a void-returning operation (Scratch) met; the recipe's next call returns it.
  absl::Status deferred_error() const { return deferred_; }

 private:
  CudaLayerOps(int device, const ModelConfig& config, kernels::ActivationPrecision precision)
      : device_(device), config_(config), precision_(precision) {}
  absl::Status EnsurePoolSlots(int slots);
  // Pages (and page-table room) for rows [0, rows) of one layer's cache.
  absl::Status EnsureKvPages(CudaSequenceState& device, CudaSequenceState::Kv& kv, int64_t rows);
  float* LightningState(int layer, int slot);

  int device_;
  ModelConfig config_;
  kernels::ActivationPrecision precision_;
  cudaStream_t stream_ = nullptr;
  kernels::cuda::CublasHandle cublas_;
  PinnedArena arena_;
  struct PendingDownload {
    const void* pinned;
    void* host;
    size_t bytes;
  };
  std::vector<PendingDownload> downloads_;
  std::map<int, kernels::cuda::DeviceBuffer> buffers_;  // Scratch slots and Buffer keys
  std::shared_ptr<SlotAllocator> slots_ = std::make_shared<SlotAllocator>();
  std::shared_ptr<DevicePages> pages_;  // KV pages and page tables (made with the stream)
  std::map<int, kernels::cuda::DeviceBuffer> pools_;    // lightning layer -> [pool_slots_, N, D, D]
  int pool_slots_ = 0;
  RankCollective* collective_ = nullptr;
  absl::Status deferred_;
};

}  // namespace mmx::model::cuda
