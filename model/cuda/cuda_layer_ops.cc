#include "model/cuda/cuda_layer_ops.h"

#include <algorithm>
#include <cstring>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/cuda/cuda_status.h"
#include "kernels/cuda/kernels_cuda.h"
#include "kernels/cuda/rank_norm.h"

namespace mmx::model::cuda {
namespace kc = ::mmx::kernels::cuda;

namespace {

// Buffer() keys, after the Scratch slots.
enum BufferKey : int {
  kIndex = static_cast<int>(Slot::kCount) + 1,  // int64 row indices
  kScale,                                      // fp32 row scales
  kPositions,                                  // int64 [T]
  kDecodeSlots,                                // int32 lightning slots of a decode run
  kRouterIds,                                  // int32 [T, K]
  kRouterWeights,                              // fp32 [T, K]
  kGemmWorkspace,
  kAttentionWorkspace,
  kRowSums,                                    // fp64 [T]: the lightning norm's partial sums
};

constexpr size_t kMinArenaBlock = size_t{1} << 20;
constexpr int64_t kMinPageTable = 32;  // entries: 2048 rows before the first growth

}  // namespace

// ---- PinnedArena ----

absl::StatusOr<void*> PinnedArena::Take(size_t bytes) {
  bytes = (bytes + 63) & ~size_t{63};  // keep pieces 64-byte aligned
  if (blocks_.empty() || used_ + bytes > blocks_.back().size()) {
    const size_t last = blocks_.empty() ? 0 : blocks_.back().size();
    MMX_ASSIGN_OR_RETURN(kc::PinnedHostBuffer block, kc::PinnedHostBuffer::Allocate(std::max({bytes, 2 * last, kMinArenaBlock})));
    blocks_.push_back(std::move(block));
    used_ = 0;
  }
  void* p = static_cast<char*>(blocks_.back().data()) + used_;
  used_ += bytes;
  return p;
}

void PinnedArena::Reset() {
  // Keep only the largest block: the next round of the same size fits in it.
  if (blocks_.size() > 1) {
    auto largest = std::max_element(blocks_.begin(), blocks_.end(),
                                    [](const auto& a, const auto& b) { return a.size() < b.size(); });
    kc::PinnedHostBuffer keep = std::move(*largest);
    blocks_.clear();
    blocks_.push_back(std::move(keep));
  }
  used_ = 0;
}

// ---- SlotAllocator / CudaSequenceState ----

int SlotAllocator::Acquire() {
  std::lock_guard<std::mutex> lock(mu_);
  if (!free_.empty()) {
    const int slot = free_.back();
    free_.pop_back();
    return slot;
  }
  return next_++;
}

void SlotAllocator::Release(int slot) {
  std::lock_guard<std::mutex> lock(mu_);
  free_.push_back(slot);
}

int SlotAllocator::high_water() const {
  std::lock_guard<std::mutex> lock(mu_);
  return next_;
}

CudaSequenceState::~CudaSequenceState() {
  slots_->Release(slot_);
  for (auto& [layer, kv] : kv_) {
    for (void* p : kv.k_pages) pages_->Give(p, page_bytes_);
    for (void* p : kv.v_pages) pages_->Give(p, page_bytes_);
    pages_->Give(kv.k_table, kv.table_capacity * sizeof(void*));
    pages_->Give(kv.v_table, kv.table_capacity * sizeof(void*));
  }
}

int64_t CudaSequenceState::bytes() const {
  int64_t total = lightning_bytes_;
  for (const auto& [layer, kv] : kv_) {
    total += static_cast<int64_t>((kv.k_pages.size() + kv.v_pages.size()) * page_bytes_);
  }
  return total;
}

// ---- CudaLayerOps: lifetime ----

absl::StatusOr<std::unique_ptr<CudaLayerOps>> CudaLayerOps::Create(int device, const ModelConfig& config,
                                                                    kernels::ActivationPrecision precision) {
  std::unique_ptr<CudaLayerOps> ops(new CudaLayerOps(device, config, precision));
  MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(device));
  MMX_CUDA_RETURN_IF_ERROR(cudaStreamCreateWithFlags(&ops->stream_, cudaStreamNonBlocking));
  ops->pages_ = std::make_shared<DevicePages>(device, ops->stream_);
  MMX_ASSIGN_OR_RETURN(ops->cublas_, kc::CublasHandle::Create());
  return ops;
}

CudaLayerOps::~CudaLayerOps() {
  if (stream_ != nullptr) {
    // The stream-ordered buffers are freed on the stream: before it goes.
    buffers_.clear();
    pools_.clear();
    cudaStreamSynchronize(stream_);
    cublas_ = kc::CublasHandle();  // the handle was last set to this stream: release it first
    cudaStreamDestroy(stream_);
  }
}

// ---- buffers, transfers ----

absl::StatusOr<void*> CudaLayerOps::Buffer(int key, size_t bytes) {
  kc::DeviceBuffer& buffer = buffers_[key];
  if (buffer.size() < bytes) {
    const size_t grown = std::max(bytes, buffer.size() * 3 / 2);
    // Stream-ordered: work already queued keeps the old buffer until it is done, and nothing
    // waits for the device (a wait here could sit between two ranks' collectives).
    buffer = kc::DeviceBuffer();  // free first: the old and new sizes need not fit together
    MMX_ASSIGN_OR_RETURN(buffer, kc::DeviceBuffer::AllocateOnStream(grown, device_, stream_));
  }
  return buffer.data();
}

float* CudaLayerOps::Scratch(Slot slot, size_t n) {
  absl::StatusOr<void*> p = Buffer(static_cast<int>(slot), std::max<size_t>(n, 1) * sizeof(float));
  if (!p.ok()) {
    deferred_.Update(p.status());
    return nullptr;
  }
  return static_cast<float*>(*p);
}

double* CudaLayerOps::RowSums(int64_t T) {
  absl::StatusOr<void*> p = Buffer(kRowSums, std::max<size_t>(static_cast<size_t>(T), 1) * sizeof(double));
  if (!p.ok()) {
    deferred_.Update(p.status());
    return nullptr;
  }
  return static_cast<double*>(*p);
}

absl::Status CudaLayerOps::Upload(const void* host, size_t bytes, void* device_dst) {
  if (bytes == 0) return absl::OkStatus();
  MMX_ASSIGN_OR_RETURN(void* pinned, arena_.Take(bytes));
  std::memcpy(pinned, host, bytes);
  MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(device_dst, pinned, bytes, cudaMemcpyHostToDevice, stream_));
  return absl::OkStatus();
}

absl::Status CudaLayerOps::Download(const void* device_src, size_t bytes, void* host_dst) {
  if (bytes == 0) return absl::OkStatus();
  MMX_ASSIGN_OR_RETURN(void* pinned, arena_.Take(bytes));
  MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(pinned, device_src, bytes, cudaMemcpyDeviceToHost, stream_));
  downloads_.push_back({pinned, host_dst, bytes});
  return absl::OkStatus();
}

absl::Status CudaLayerOps::Sync() {
  absl::Status st;
  if (collective_ != nullptr) {
    // A rank polls instead of blocking: a peer rank that failed never joins the collective this
    // stream may be waiting in, and only this thread may abort this rank's communicator.
    cudaError_t err;
    while ((err = cudaStreamQuery(stream_)) == cudaErrorNotReady) {
      st = collective_->WhileWaiting();
      if (!st.ok()) break;
      std::this_thread::yield();
    }
    if (st.ok()) st = kc::CudaStatus(err, "waiting for the GPU stream");
    // Aborted: the communicator's kernels have returned; let the rest of the queue drain before
    // the pinned arena is reused.
    if (!st.ok()) cudaStreamSynchronize(stream_);
  } else {
    st = kc::CudaStatus(cudaStreamSynchronize(stream_), "waiting for the GPU stream");
  }
  if (st.ok()) {
    for (const PendingDownload& d : downloads_) std::memcpy(d.host, d.pinned, d.bytes);
  }
  downloads_.clear();
  arena_.Reset();
  absl::Status deferred = std::exchange(deferred_, absl::OkStatus());
  MMX_RETURN_IF_ERROR(st);
  return deferred;
}

// ---- the recipe's operations ----

absl::Status CudaLayerOps::Gemm(const float* x, int64_t T, const kernels::WeightView& w, float* y) {
  MMX_RETURN_IF_ERROR(deferred_);
  kc::GemmOptions options;
  options.precision = precision_;
  options.cublas = cublas_.get();
  const size_t need = kc::GemmWorkspaceBytes(T, w, options);
  if (need > 0) {
    MMX_ASSIGN_OR_RETURN(options.workspace, Buffer(kGemmWorkspace, need));
    options.workspace_bytes = buffers_[kGemmWorkspace].size();
  }
  return kc::Gemm(x, T, w, y, stream_, options);
}

absl::Status CudaLayerOps::GemmGroup(const kernels::GemmProblem* problems, int64_t count) {
  // One launch per matrix on the stream: at decode sizes each is a memory-bound GEMV that
  // fills the GPU by itself (a grouped kernel is future work for many tiny experts).
  for (int64_t i = 0; i < count; ++i) {
    MMX_RETURN_IF_ERROR(Gemm(problems[i].x, problems[i].num_tokens, problems[i].w, problems[i].y));
  }
  return absl::OkStatus();
}

absl::Status CudaLayerOps::RmsNorm(const float* x, int64_t T, int64_t n, const float* gamma, float eps, float* out) {
  MMX_RETURN_IF_ERROR(deferred_);
  return kc::RmsNorm(x, T, n, gamma, eps, out, stream_);
}

absl::Status CudaLayerOps::RowSumOfSquares(const float* x, int64_t T, int64_t width, double* sums) {
  MMX_RETURN_IF_ERROR(deferred_);
  return kc::RowSumOfSquares(x, T, width, sums, stream_);
}

absl::Status CudaLayerOps::NormalizeRows(const float* x, int64_t T, int64_t width, const double* sums,
                                         int64_t full_width, const float* gamma, float eps, float* out) {
  MMX_RETURN_IF_ERROR(deferred_);
  return kc::NormalizeRows(x, T, width, sums, full_width, gamma, eps, out, stream_);
}

absl::Status CudaLayerOps::SiluInPlace(float* x, int64_t n) {
  MMX_RETURN_IF_ERROR(deferred_);
  return kc::SiluInPlace(x, n, stream_);
}

absl::Status CudaLayerOps::SiluMul(const float* gate, const float* up, int64_t n, float* out) {
  MMX_RETURN_IF_ERROR(deferred_);
  return kc::SiluMul(gate, up, n, out, stream_);
}

absl::Status CudaLayerOps::SigmoidMulInPlace(const float* gate, float* x, int64_t n) {
  MMX_RETURN_IF_ERROR(deferred_);
  return kc::SigmoidMulInPlace(gate, x, n, stream_);
}

absl::Status CudaLayerOps::Axpby(float alpha, const float* a, float beta, const float* b, int64_t n, float* out) {
  MMX_RETURN_IF_ERROR(deferred_);
  return kc::Axpby(alpha, a, beta, b, n, out, stream_);
}

absl::Status CudaLayerOps::Copy(const float* src, int64_t n, float* dst) {
  MMX_RETURN_IF_ERROR(deferred_);
  if (n == 0) return absl::OkStatus();
  MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(dst, src, n * sizeof(float), cudaMemcpyDeviceToDevice, stream_));
  return absl::OkStatus();
}

absl::Status CudaLayerOps::ApplyRope(float* x, int64_t T, int heads, int head_dim, int rotary_dim,
                                     const BatchLayout& batch, const float* inv_freq) {
  MMX_RETURN_IF_ERROR(deferred_);
  const size_t bytes = batch.positions.size() * sizeof(int64_t);
  MMX_ASSIGN_OR_RETURN(void* positions, Buffer(kPositions, bytes));
  MMX_RETURN_IF_ERROR(Upload(batch.positions.data(), bytes, positions));
  return kc::ApplyRope(x, T, heads, head_dim, rotary_dim, static_cast<const int64_t*>(positions), inv_freq, stream_);
}

float* CudaLayerOps::LightningState(int layer, int slot) {
  const int64_t per_slot = int64_t{config_.num_attention_heads} * config_.head_dim * config_.head_dim;
  return pools_.at(layer).as<float>() + slot * per_slot;
}

absl::Status CudaLayerOps::Lightning(const kernels::LightningShape& shape, const BatchLayout& batch, int layer,
                                     const float* qkv, float* o) {
  MMX_RETURN_IF_ERROR(deferred_);
  const int64_t qw = int64_t{shape.num_heads} * shape.head_dim;
  if (pools_.find(layer) == pools_.end()) return absl::InternalError(absl::StrCat("no lightning pool for layer ", layer));
  // Runs of consecutive one-token sequences (decode) share one launch: their rows are adjacent.
  const auto& seqs = batch.sequences;
  std::vector<int32_t> slots;
  for (size_t i = 0; i < seqs.size();) {
    const auto* device = static_cast<const CudaSequenceState*>(seqs[i].state->device());
    if (device == nullptr) return absl::InternalError("a sequence without device state reached the GPU");
    if (seqs[i].num_tokens != 1) {
      // kBf16: the block form on tensor cores; kFp32 keeps the fp32 recurrence (the golden path).
      const auto prefill = precision_ == kernels::ActivationPrecision::kBf16 ? kc::LightningPrefillBlocked
                                                                              : kc::LightningPrefill;
      MMX_RETURN_IF_ERROR(prefill(shape, qkv + seqs[i].row_begin * 3 * qw, seqs[i].num_tokens,
                                  LightningState(layer, device->slot()), o + seqs[i].row_begin * qw, stream_));
      ++i;
      continue;
    }
    size_t end = i;
    slots.clear();
    while (end < seqs.size() && seqs[end].num_tokens == 1) {
      slots.push_back(static_cast<const CudaSequenceState*>(seqs[end].state->device())->slot());
      ++end;
    }
    // Each run gets its own piece of the slot buffer, so runs queued together never share one.
    MMX_ASSIGN_OR_RETURN(void* all_slots, Buffer(kDecodeSlots, seqs.size() * sizeof(int32_t)));
    int32_t* run_slots = static_cast<int32_t*>(all_slots) + i;
    MMX_RETURN_IF_ERROR(Upload(slots.data(), slots.size() * sizeof(int32_t), run_slots));
    kc::LightningDecodeParams p;
    p.shape = shape;
    p.qkv = qkv + seqs[i].row_begin * 3 * qw;
    p.num_seqs = static_cast<int64_t>(slots.size());
    p.state_pool = pools_.at(layer).as<float>();
    p.num_slots = pool_slots_;
    p.slots = run_slots;
    p.out = o + seqs[i].row_begin * qw;
    MMX_RETURN_IF_ERROR(kc::LightningDecode(p, stream_));
    i = end;
  }
  return absl::OkStatus();
}

absl::Status CudaLayerOps::EnsureKvPages(CudaSequenceState& device, CudaSequenceState::Kv& kv, int64_t rows) {
  const size_t need = static_cast<size_t>((rows + kKvBlockTokens - 1) / kKvBlockTokens);
  if (need <= kv.k_pages.size()) return absl::OkStatus();
  DevicePages& pages = device.pages();
  const size_t first_new = kv.k_pages.size();
  while (kv.k_pages.size() < need) {
    MMX_ASSIGN_OR_RETURN(void* k, pages.Take(device.page_bytes()));
    kv.k_pages.push_back(k);
    MMX_ASSIGN_OR_RETURN(void* v, pages.Take(device.page_bytes()));
    kv.v_pages.push_back(v);
  }
  size_t upload_from = first_new;
  if (static_cast<int64_t>(need) > kv.table_capacity) {
    // A larger table, written whole; the old one goes back to the pool (stream-ordered reuse).
    const int64_t capacity = std::max<int64_t>({kMinPageTable, 2 * kv.table_capacity, static_cast<int64_t>(need)});
    MMX_ASSIGN_OR_RETURN(void* k_table, pages.Take(capacity * sizeof(void*)));
    MMX_ASSIGN_OR_RETURN(void* v_table, pages.Take(capacity * sizeof(void*)));
    pages.Give(kv.k_table, kv.table_capacity * sizeof(void*));
    pages.Give(kv.v_table, kv.table_capacity * sizeof(void*));
    kv.k_table = k_table;
    kv.v_table = v_table;
    kv.table_capacity = capacity;
    upload_from = 0;
  }
  const size_t count = need - upload_from;
  MMX_RETURN_IF_ERROR(Upload(kv.k_pages.data() + upload_from, count * sizeof(void*),
                             static_cast<void**>(kv.k_table) + upload_from));
  return Upload(kv.v_pages.data() + upload_from, count * sizeof(void*), static_cast<void**>(kv.v_table) + upload_from);
}

absl::Status CudaLayerOps::AppendKv(SequenceState& state, int layer, const float* k, const float* v, int64_t n) {
  MMX_RETURN_IF_ERROR(deferred_);
  auto* device = static_cast<CudaSequenceState*>(state.device());
  if (device == nullptr) return absl::InternalError("a sequence without device state reached the GPU");
  CudaSequenceState::Kv& kv = device->kv()[layer];
  const int64_t length = state.layer(layer).length;
  MMX_RETURN_IF_ERROR(EnsureKvPages(*device, kv, length + n));
  const int64_t width = state.kv_width();
  const bool bf16 = state.kv_dtype() == DType::kBF16;
  const size_t elem = bf16 ? sizeof(uint16_t) : sizeof(float);
  // The new rows, a page's worth at a time.
  for (int64_t row = length; row < length + n;) {
    const int64_t page = row / kKvBlockTokens, in_page = row % kKvBlockTokens;
    const int64_t count = std::min(length + n - row, kKvBlockTokens - in_page);
    const int64_t from = (row - length) * width;
    char* k_dst = static_cast<char*>(kv.k_pages[page]) + in_page * width * elem;
    char* v_dst = static_cast<char*>(kv.v_pages[page]) + in_page * width * elem;
    if (bf16) {
      MMX_RETURN_IF_ERROR(kc::ConvertToBf16(k + from, count * width, reinterpret_cast<uint16_t*>(k_dst), stream_));
      MMX_RETURN_IF_ERROR(kc::ConvertToBf16(v + from, count * width, reinterpret_cast<uint16_t*>(v_dst), stream_));
    } else {
      const size_t bytes = static_cast<size_t>(count * width) * sizeof(float);
      MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(k_dst, k + from, bytes, cudaMemcpyDeviceToDevice, stream_));
      MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(v_dst, v + from, bytes, cudaMemcpyDeviceToDevice, stream_));
    }
    row += count;
  }
  return absl::OkStatus();
}

absl::Status CudaLayerOps::CausalAttention(const kernels::AttentionShape& shape, const float* q, int64_t n,
                                           SequenceState& state, int layer, int64_t total_len, float* o) {
  MMX_RETURN_IF_ERROR(deferred_);
  auto* device = static_cast<CudaSequenceState*>(state.device());
  if (device == nullptr) return absl::InternalError("a sequence without device state reached the GPU");
  const CudaSequenceState::Kv& kv = device->kv()[layer];
  kc::PagedKv paged;
  paged.k_pages = static_cast<const void* const*>(kv.k_table);
  paged.v_pages = static_cast<const void* const*>(kv.v_table);
  paged.page_rows = kKvBlockTokens;
  paged.dtype = state.kv_dtype();
  if (n != 1) return kc::CausalAttentionPaged(shape, q, n, paged, total_len, o, stream_);
  kc::CausalAttentionDecodeParams p;
  p.shape = shape;
  p.q = q;
  p.paged = paged;
  p.total_len = total_len;
  p.out = o;
  const size_t need = kc::CausalAttentionDecodeWorkspaceBytes(shape, total_len);
  MMX_ASSIGN_OR_RETURN(p.workspace, Buffer(kAttentionWorkspace, need));
  p.workspace_bytes = buffers_[kAttentionWorkspace].size();
  return kc::CausalAttentionDecode(p, stream_);
}

absl::Status CudaLayerOps::RouterTopK(const float* logits, int64_t T, int E, int K, Routing* routing) {
  MMX_RETURN_IF_ERROR(deferred_);
  MMX_ASSIGN_OR_RETURN(void* ids, Buffer(kRouterIds, T * K * sizeof(int32_t)));
  MMX_ASSIGN_OR_RETURN(void* weights, Buffer(kRouterWeights, T * K * sizeof(float)));
  MMX_RETURN_IF_ERROR(kc::RouterTopK(logits, T, E, K, static_cast<int*>(ids), static_cast<float*>(weights), stream_));
  routing->k = K;
  routing->expert_ids.resize(T * K);
  routing->weights.resize(T * K);
  static_assert(sizeof(int) == sizeof(int32_t));
  MMX_RETURN_IF_ERROR(Download(ids, T * K * sizeof(int32_t), routing->expert_ids.data()));
  MMX_RETURN_IF_ERROR(Download(weights, T * K * sizeof(float), routing->weights.data()));
  if (routing->keep_logits) {
    routing->logits.resize(T * E);
    MMX_RETURN_IF_ERROR(Download(logits, T * E * sizeof(float), routing->logits.data()));
  }
  // The routing decides the dispatch, which happens on the host: wait for it here.
  return Sync();
}

absl::Status CudaLayerOps::GatherRows(const float* src, const std::vector<int64_t>& index, int64_t width, float* dst) {
  MMX_RETURN_IF_ERROR(deferred_);
  if (index.empty()) return absl::OkStatus();
  const size_t bytes = index.size() * sizeof(int64_t);
  MMX_ASSIGN_OR_RETURN(void* device_index, Buffer(kIndex, bytes));
  MMX_RETURN_IF_ERROR(Upload(index.data(), bytes, device_index));
  return kc::GatherRows(src, static_cast<const int64_t*>(device_index), static_cast<int64_t>(index.size()), width,
                        dst, stream_);
}

absl::Status CudaLayerOps::ScaleScatterRows(const float* src, const std::vector<float>& scale,
                                            const std::vector<int64_t>& index, int64_t width, float* dst) {
  MMX_RETURN_IF_ERROR(deferred_);
  if (index.empty()) return absl::OkStatus();
  MMX_ASSIGN_OR_RETURN(void* device_index, Buffer(kIndex, index.size() * sizeof(int64_t)));
  MMX_ASSIGN_OR_RETURN(void* device_scale, Buffer(kScale, scale.size() * sizeof(float)));
  MMX_RETURN_IF_ERROR(Upload(index.data(), index.size() * sizeof(int64_t), device_index));
  MMX_RETURN_IF_ERROR(Upload(scale.data(), scale.size() * sizeof(float), device_scale));
  return kc::ScaleScatterRows(src, static_cast<const float*>(device_scale), static_cast<const int64_t*>(device_index),
                              static_cast<int64_t>(index.size()), width, dst, stream_);
}

// ---- sequences ----

absl::Status CudaLayerOps::EnsurePoolSlots(int slots) {
  if (slots <= pool_slots_) return absl::OkStatus();
  const int capacity = std::max({slots, 2 * pool_slots_, 8});
  const size_t per_slot = static_cast<size_t>(config_.num_attention_heads) * config_.head_dim * config_.head_dim *
                          sizeof(float);
  for (auto& [layer, pool] : pools_) {
    MMX_ASSIGN_OR_RETURN(kc::DeviceBuffer grown,
                         kc::DeviceBuffer::AllocateOnStream(capacity * per_slot, device_, stream_));
    if (pool.size() > 0) {
      MMX_CUDA_RETURN_IF_ERROR(cudaMemcpyAsync(grown.data(), pool.data(), pool.size(), cudaMemcpyDeviceToDevice,
                                               stream_));
    }
    pool = std::move(grown);  // the old pool is freed after the copy, in stream order
  }
  pool_slots_ = capacity;
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SequenceState>> CudaLayerOps::NewSequence(int first_layer, int end_layer,
                                                                         DType kv_dtype) {
  const size_t per_slot = static_cast<size_t>(config_.num_attention_heads) * config_.head_dim * config_.head_dim *
                          sizeof(float);
  MMX_CUDA_RETURN_IF_ERROR(cudaSetDevice(device_));
  int lightning_layers = 0;
  for (int l = first_layer; l < end_layer; ++l) {
    if (config_.is_softmax(l)) continue;
    ++lightning_layers;
    if (pools_.find(l) == pools_.end() && pool_slots_ > 0) {
      MMX_ASSIGN_OR_RETURN(pools_[l], kc::DeviceBuffer::AllocateOnStream(pool_slots_ * per_slot, device_, stream_));
    } else if (pools_.find(l) == pools_.end()) {
      pools_[l] = kc::DeviceBuffer();
    }
  }
  if (kv_dtype != DType::kF32 && kv_dtype != DType::kBF16) {
    return absl::InvalidArgumentError(absl::StrCat("a KV cache of ", DTypeName(kv_dtype), ": fp32 or bf16"));
  }
  const size_t page_bytes = static_cast<size_t>(kKvBlockTokens * config_.kv_width()) * DTypeSize(kv_dtype);
  const int slot = slots_->Acquire();
  auto device = std::make_unique<CudaSequenceState>(slots_, slot, lightning_layers * static_cast<int64_t>(per_slot),
                                                    pages_, page_bytes);
  MMX_RETURN_IF_ERROR(EnsurePoolSlots(slot + 1));
  for (int l = first_layer; l < end_layer; ++l) {
    if (config_.is_softmax(l)) continue;
    MMX_CUDA_RETURN_IF_ERROR(cudaMemsetAsync(LightningState(l, slot), 0, per_slot, stream_));
  }
  auto state =
      std::make_unique<SequenceState>(config_, first_layer, end_layer, kv_dtype, SequenceState::Storage::kDevice);
  state->set_device(std::move(device));
  return state;
}

}  // namespace mmx::model::cuda
