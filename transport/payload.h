// Payload: the bytes of a received message. A std::vector whose allocator (1) leaves new bytes
// uninitialized, since a receive overwrites them at once (zero-filling a 1 MiB buffer first cost
// as much as the copy), and (2) keeps freed large buffers for the next message of the same
// size class instead of giving the pages back to the kernel: on a VM each page fault of a fresh
// buffer cost more than copying the page, and two rendezvous messages in flight made glibc trim
// and refault its heap on every message (1 MiB messages fell from 7 GB/s to 0.4 GB/s). Reused
// addresses also hit UCX's registration cache on RDMA transports, so a buffer is registered
// once, not per message. (3) Buffers of 1 MiB and more are transparent huge pages (payload.cc).
// Send from such memory too (PooledFloats) where rows are large: the sender's pages are the
// ones a CMA rendezvous pins.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>
#include <vector>

namespace mmx::transport {

// Process-wide cache of freed payload buffers of at least kMinPooledBytes, by size class, up to
// kMaxCachedBytes in all (beyond that, freed buffers go back to the heap). Thread-safe.
class PayloadPool {
 public:
  static constexpr size_t kMinPooledBytes = size_t{64} << 10;
  static constexpr size_t kMaxCachedBytes = size_t{256} << 20;
  // From this size class up, buffers are 2 MiB-aligned transparent huge pages.
  static constexpr size_t kMinHugeBytes = size_t{1} << 20;
  static void* Allocate(size_t bytes);
  static void Free(void* p, size_t bytes);
  // Bytes now cached (tests, diagnostics).
  static size_t cached_bytes();
};

template <class T>
struct PayloadAllocator {
  using value_type = T;
  PayloadAllocator() = default;
  template <class U>
  PayloadAllocator(const PayloadAllocator<U>&) noexcept {}  // NOLINT: allocators convert implicitly

  T* allocate(size_t n) { return static_cast<T*>(PayloadPool::Allocate(n * sizeof(T))); }
  void deallocate(T* p, size_t n) noexcept { PayloadPool::Free(p, n * sizeof(T)); }
  // Default-initialization: resize() leaves bytes as they were.
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
  friend bool operator==(const PayloadAllocator&, const PayloadAllocator&) { return true; }
};

using Payload = std::vector<uint8_t, PayloadAllocator<uint8_t>>;
// Rows to send from pooled memory (huge pages when large), left uninitialized by resize().
using PooledFloats = std::vector<float, PayloadAllocator<float>>;

// Payloads compare with plain byte vectors (tests build expected payloads that way).
inline bool operator==(const Payload& a, const std::vector<uint8_t>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace mmx::transport
