#include "model/kv_cache.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <new>
#include <utility>

#include "base/bf16.h"

namespace mmx::model {

std::shared_ptr<KvBlockPool> KvBlockPool::ForBlockBytes(size_t block_bytes) {
  static absl::Mutex mu(absl::kConstInit);
  static auto* pools = new std::map<size_t, std::shared_ptr<KvBlockPool>>();
  absl::MutexLock lock(&mu);
  std::shared_ptr<KvBlockPool>& pool = (*pools)[block_bytes];
  if (!pool) pool = std::make_shared<KvBlockPool>(block_bytes);
  return pool;
}

KvBlockPool::~KvBlockPool() {
  for (void* block : free_) ::operator delete(block, std::align_val_t{64});
}

void* KvBlockPool::Take() {
  {
    absl::MutexLock lock(&mu_);
    ++in_use_;
    if (!free_.empty()) {
      void* block = free_.back();
      free_.pop_back();
      return block;
    }
  }
  return ::operator new(block_bytes_, std::align_val_t{64});
}

void KvBlockPool::Give(void* block) {
  absl::MutexLock lock(&mu_);
  --in_use_;
  free_.push_back(block);
}

int64_t KvBlockPool::blocks_in_use() const {
  absl::MutexLock lock(&mu_);
  return in_use_;
}

int64_t KvBlockPool::blocks_free() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(free_.size());
}

PagedKv::PagedKv(int64_t width, DType dtype)
    : pool_(KvBlockPool::ForBlockBytes(static_cast<size_t>(kKvBlockTokens * width) * DTypeSize(dtype))),
      width_(width),
      dtype_(dtype) {}

PagedKv::~PagedKv() { Release(); }

PagedKv::PagedKv(PagedKv&& other) noexcept
    : pool_(std::move(other.pool_)),
      width_(other.width_),
      dtype_(other.dtype_),
      keys_(std::move(other.keys_)),
      values_(std::move(other.values_)),
      rows_(std::exchange(other.rows_, 0)) {
  other.keys_.clear();
  other.values_.clear();
}

PagedKv& PagedKv::operator=(PagedKv&& other) noexcept {
  if (this != &other) {
    Release();
    pool_ = std::move(other.pool_);
    width_ = other.width_;
    dtype_ = other.dtype_;
    keys_ = std::move(other.keys_);
    values_ = std::move(other.values_);
    other.keys_.clear();
    other.values_.clear();
    rows_ = std::exchange(other.rows_, 0);
  }
  return *this;
}

void PagedKv::Release() {
  for (void* b : keys_) pool_->Give(b);
  for (void* b : values_) pool_->Give(b);
  keys_.clear();
  values_.clear();
  rows_ = 0;
}

void* PagedKv::RowAt(const std::vector<void*>& blocks, int64_t r) const {
  return static_cast<char*>(blocks[r / kKvBlockTokens]) +
         (r % kKvBlockTokens) * width_ * static_cast<int64_t>(DTypeSize(dtype_));
}

void PagedKv::Append(const float* k, const float* v, int64_t n) {
  for (int64_t i = 0; i < n; ++i, ++rows_) {
    if (rows_ == static_cast<int64_t>(keys_.size()) * kKvBlockTokens) {
      keys_.push_back(pool_->Take());
      values_.push_back(pool_->Take());
    }
    const float* ks = k + i * width_;
    const float* vs = v + i * width_;
    if (dtype_ == DType::kBF16) {
      uint16_t* kd = static_cast<uint16_t*>(RowAt(keys_, rows_));
      uint16_t* vd = static_cast<uint16_t*>(RowAt(values_, rows_));
      for (int64_t j = 0; j < width_; ++j) {
        kd[j] = FloatToBf16(ks[j]);
        vd[j] = FloatToBf16(vs[j]);
      }
    } else {
      std::memcpy(RowAt(keys_, rows_), ks, static_cast<size_t>(width_) * sizeof(float));
      std::memcpy(RowAt(values_, rows_), vs, static_cast<size_t>(width_) * sizeof(float));
    }
  }
}

int64_t PagedKv::bytes() const {
  return pool_ ? static_cast<int64_t>(keys_.size() + values_.size()) * static_cast<int64_t>(pool_->block_bytes()) : 0;
}

kernels::KvCacheView PagedKv::view() const {
  kernels::KvCacheView view;
  view.dtype = dtype_;
  view.block_tokens = kKvBlockTokens;
  view.key_blocks = keys_.data();
  view.value_blocks = values_.data();
  return view;
}

void PagedKv::ReadRow(int64_t r, float* k, float* v) const {
  if (dtype_ == DType::kBF16) {
    const uint16_t* ks = static_cast<const uint16_t*>(RowAt(keys_, r));
    const uint16_t* vs = static_cast<const uint16_t*>(RowAt(values_, r));
    for (int64_t j = 0; j < width_; ++j) {
      k[j] = Bf16ToFloat(ks[j]);
      v[j] = Bf16ToFloat(vs[j]);
    }
    return;
  }
  std::memcpy(k, RowAt(keys_, r), static_cast<size_t>(width_) * sizeof(float));
  std::memcpy(v, RowAt(values_, r), static_cast<size_t>(width_) * sizeof(float));
}

}  // namespace mmx::model
