#include "base/buffer_pool.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstdlib>
#include <new>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace mmx {
namespace {

// Four size classes per power of two (at most 25% rounding up), so that messages of one size
// (one activation shape) always land in one class.
size_t SizeClass(size_t bytes) {
  const int octave = std::bit_width(bytes - 1) - 1;  // bytes > 2^octave
  const size_t step = (size_t{1} << octave) / 4;
  return (bytes + step - 1) / step * step;
}

// Buffers of a size class of at least kMinHugeBytes are whole transparent huge pages (2 MiB
// aligned, MADV_HUGEPAGE; the kernel here gives them only to memory that asks). A rendezvous
// over CMA pins the sender's pages and copies into the receiver's one page at a time
// (process_vm_readv); on 4 KiB pages that bookkeeping, not the copy, was a third of a 1 MiB
// transfer (docs/benchmarks.md). From 512 KiB, not 1 MiB, because a decode step's activations
// for the real model (hidden 6144, 32 tokens) are 768 KiB. The rounding up to 2 MiB is what the
// cache counts.
constexpr size_t kHugePage = size_t{2} << 20;

size_t BufferBytes(size_t size_class) {
  if (size_class < BufferPool::kMinHugeBytes) return size_class;
  return (size_class + kHugePage - 1) / kHugePage * kHugePage;
}

void* NewBuffer(size_t size_class) {
  if (size_class < BufferPool::kMinHugeBytes) return ::operator new(size_class);
  const size_t bytes = BufferBytes(size_class);
  void* p = std::aligned_alloc(kHugePage, bytes);
  if (p == nullptr) throw std::bad_alloc();
  (void)madvise(p, bytes, MADV_HUGEPAGE);  // advice: without THP the buffer still works
  return p;
}

void DeleteBuffer(void* p, size_t size_class) {
  if (size_class < BufferPool::kMinHugeBytes) {
    ::operator delete(p);
  } else {
    std::free(p);
  }
}

struct Cache {
  absl::Mutex mu;
  absl::flat_hash_map<size_t, std::vector<void*>> free ABSL_GUARDED_BY(mu);
  size_t cached_bytes ABSL_GUARDED_BY(mu) = 0;
};

Cache& TheCache() {
  static Cache* cache = new Cache;  // never destroyed: buffers may be freed during exit
  return *cache;
}

}  // namespace

void* BufferPool::Allocate(size_t bytes) {
  if (bytes < kMinPooledBytes) return ::operator new(bytes);
  const size_t size_class = SizeClass(bytes);
  Cache& cache = TheCache();
  {
    absl::MutexLock lock(&cache.mu);
    auto found = cache.free.find(size_class);
    if (found != cache.free.end() && !found->second.empty()) {
      void* p = found->second.back();
      found->second.pop_back();
      cache.cached_bytes -= BufferBytes(size_class);
      return p;
    }
  }
  return NewBuffer(size_class);
}

// When the cache is full, buffers of other size classes make room for the one just freed: the
// class in use now is the one worth keeping. Without this, one burst of messages of one shape
// (a mailbox that filled up, then freed at once) would fill the cache for good, and every later
// buffer of another shape (activations change shape with the batch) would be fresh memory.
void BufferPool::Free(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kMinPooledBytes) {
    ::operator delete(p);
    return;
  }
  const size_t size_class = SizeClass(bytes);
  const size_t need = BufferBytes(size_class);
  std::vector<std::pair<void*, size_t>> evicted;  // (buffer, size class), freed outside the lock
  Cache& cache = TheCache();
  {
    absl::MutexLock lock(&cache.mu);
    while (cache.cached_bytes + need > kMaxCachedBytes) {
      // The other class holding the most bytes gives up a buffer.
      std::vector<void*>* victim = nullptr;
      size_t victim_class = 0, victim_bytes = 0;
      for (auto& [c, buffers] : cache.free) {
        const size_t held = buffers.size() * BufferBytes(c);
        if (c != size_class && held > victim_bytes) victim = &buffers, victim_class = c, victim_bytes = held;
      }
      if (victim == nullptr) break;  // this class alone fills the cache
      evicted.emplace_back(victim->back(), victim_class);
      victim->pop_back();
      cache.cached_bytes -= BufferBytes(victim_class);
    }
    if (cache.cached_bytes + need <= kMaxCachedBytes) {
      cache.free[size_class].push_back(p);
      cache.cached_bytes += need;
      p = nullptr;
    }
  }
  for (const auto& [buffer, c] : evicted) DeleteBuffer(buffer, c);
  if (p != nullptr) DeleteBuffer(p, size_class);
}

size_t BufferPool::cached_bytes() {
  Cache& cache = TheCache();
  absl::MutexLock lock(&cache.mu);
  return cache.cached_bytes;
}

}  // namespace mmx
