// BufferPool: memory for large, short-lived buffers of a few recurring sizes (received messages,
// activation rows; base/pooled_buffer.h is the array type over it). Freed buffers of at least
// kMinPooledBytes are kept for the next buffer of the same size class instead of giving the pages
// back to the kernel: on a VM each page fault of a fresh buffer cost more than copying the page,
// and two rendezvous messages in flight made glibc trim and refault its heap on every message
// (1 MiB messages fell from 7 GB/s to 0.4 GB/s). Reused addresses also hit UCX's registration
// cache on RDMA transports, so a buffer is registered once, not per message. Buffers of 512 KiB
// and more are transparent huge pages (buffer_pool.cc). When the cache is full, the size class
// freed now pushes out others.
#pragma once

#include <cstddef>

namespace mmx {

// Process-wide, thread-safe. Free must be given the size the buffer was allocated with.
class BufferPool {
 public:
  static constexpr size_t kMinPooledBytes = size_t{64} << 10;
  static constexpr size_t kMaxCachedBytes = size_t{256} << 20;
  // From this size class up, buffers are 2 MiB-aligned transparent huge pages (a 768 KiB decode
  // message of the real model is one).
  static constexpr size_t kMinHugeBytes = size_t{512} << 10;
  static void* Allocate(size_t bytes);
  static void Free(void* p, size_t bytes);
  // Bytes now cached (tests, diagnostics).
  static size_t cached_bytes();
};

}  // namespace mmx
