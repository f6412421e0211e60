#include "transport/payload.h"

#include <algorithm>
#include <bit>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"

namespace mmx::transport {
namespace {

// Four size classes per power of two (at most 25% rounding up), so that messages of one size
// (one activation shape) always land in one class.
size_t SizeClass(size_t bytes) {
  const int octave = std::bit_width(bytes - 1) - 1;  // bytes > 2^octave
  const size_t step = (size_t{1} << octave) / 4;
  return (bytes + step - 1) / step * step;
}

struct Cache {
  absl::Mutex mu;
  absl::flat_hash_map<size_t, std::vector<void*>> free ABSL_GUARDED_BY(mu);
  size_t cached_bytes ABSL_GUARDED_BY(mu) = 0;
};

Cache& TheCache() {
  static Cache* cache = new Cache;  // never destroyed: payloads may be freed during exit
  return *cache;
}

}  // namespace

void* PayloadPool::Allocate(size_t bytes) {
  if (bytes < kMinPooledBytes) return ::operator new(bytes);
  const size_t size_class = SizeClass(bytes);
  Cache& cache = TheCache();
  {
    absl::MutexLock lock(&cache.mu);
    auto found = cache.free.find(size_class);
    if (found != cache.free.end() && !found->second.empty()) {
      void* p = found->second.back();
      found->second.pop_back();
      cache.cached_bytes -= size_class;
      return p;
    }
  }
  return ::operator new(size_class);
}

void PayloadPool::Free(void* p, size_t bytes) {
  if (p == nullptr) return;
  if (bytes < kMinPooledBytes) {
    ::operator delete(p);
    return;
  }
  const size_t size_class = SizeClass(bytes);
  Cache& cache = TheCache();
  {
    absl::MutexLock lock(&cache.mu);
    if (cache.cached_bytes + size_class <= kMaxCachedBytes) {
      cache.free[size_class].push_back(p);
      cache.cached_bytes += size_class;
      return;
    }
  }
  ::operator delete(p);
}

size_t PayloadPool::cached_bytes() {
  Cache& cache = TheCache();
  absl::MutexLock lock(&cache.mu);
  return cache.cached_bytes;
}

}  // namespace mmx::transport
