// The softmax layers' KV cache of one sequence, paged: K and V rows (after RoPE) in blocks of
// kKvBlockTokens rows, fp32 or bf16, taken from a process-wide pool and given back when the
// sequence ends. A growing sequence takes one more block (its old rows never move); a freed block
// is handed out again. Memory is counted in blocks: a cache of p positions holds KvRowsHeld(p)
// rows (model/state_bytes.h, which the planner and admission count by too).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "base/dtype.h"
#include "kernels/kernels.h"
#include "model/config.h"
#include "model/state_bytes.h"

namespace mmx::model {

static_assert(kKvBlockTokens % kernels::kKvKeyBlock == 0, "a key block must not straddle two KV blocks");

// Blocks of one size, shared by every sequence of the process. Thread-safe.
class KvBlockPool {
 public:
  // The pool of `block_bytes` blocks (one per size, created on first use, never destroyed).
  static std::shared_ptr<KvBlockPool> ForBlockBytes(size_t block_bytes);

  explicit KvBlockPool(size_t block_bytes) : block_bytes_(block_bytes) {}
  ~KvBlockPool();
  KvBlockPool(const KvBlockPool&) = delete;
  KvBlockPool& operator=(const KvBlockPool&) = delete;

  // A block: one given back earlier if there is one, else a new one (64-byte aligned).
  void* Take();
  void Give(void* block);

  size_t block_bytes() const { return block_bytes_; }
  int64_t blocks_in_use() const;
  int64_t blocks_free() const;

 private:
  const size_t block_bytes_;
  mutable absl::Mutex mu_;
  std::vector<void*> free_ ABSL_GUARDED_BY(mu_);
  int64_t in_use_ ABSL_GUARDED_BY(mu_) = 0;
};

// One layer's K and V cache.
class PagedKv {
 public:
  PagedKv() = default;  // a layer without KV (lightning)
  // Rows of `width` = Nkv * D elements of `dtype` (kF32 or kBF16).
  PagedKv(int64_t width, DType dtype);
  ~PagedKv();
  PagedKv(PagedKv&& other) noexcept;
  PagedKv& operator=(PagedKv&& other) noexcept;
  PagedKv(const PagedKv&) = delete;
  PagedKv& operator=(const PagedKv&) = delete;

  // Appends n rows of K and V given in fp32 (rounded to nearest even for bf16).
  void Append(const float* k, const float* v, int64_t n);
  int64_t rows() const { return rows_; }
  DType dtype() const { return dtype_; }
  // Bytes of the blocks held, K and V.
  int64_t bytes() const;
  // What kernels::CausalAttention reads; valid until the next Append.
  kernels::KvCacheView view() const;
  // Row r of K and of V as fp32 (width elements each).
  void ReadRow(int64_t r, float* k, float* v) const;

 private:
  void Release();
  void* RowAt(const std::vector<void*>& blocks, int64_t r) const;

  std::shared_ptr<KvBlockPool> pool_;
  int64_t width_ = 0;
  DType dtype_ = DType::kF32;
  std::vector<void*> keys_, values_;
  int64_t rows_ = 0;
};

}  // namespace mmx::model
