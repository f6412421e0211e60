// The payload pool: a freed large buffer is handed out again for the next message of its size
// class (no fresh pages), small ones go to the heap, large ones are huge pages, and the cache
// is bounded.
#include "transport/payload.h"

#include <cstdint>

#include "gtest/gtest.h"

namespace mmx::transport {
namespace {

TEST(PayloadPoolTest, AFreedLargeBufferServesTheNextMessageOfItsSizeClass) {
  const size_t before = PayloadPool::cached_bytes();
  const uint8_t* first = nullptr;
  {
    Payload a(1 << 20);
    first = a.data();
  }
  EXPECT_GT(PayloadPool::cached_bytes(), before);
  Payload b((1 << 20) - 100);  // same class (four per power of two)
  EXPECT_EQ(b.data(), first);
  EXPECT_EQ(PayloadPool::cached_bytes(), before);
}

// From 1 MiB up a buffer is whole 2 MiB pages (asked to be transparent huge pages, so that a CMA
// rendezvous pins and copies few pages), and the cache counts the whole pages it keeps.
TEST(PayloadPoolTest, LargeBuffersAreWholeAlignedHugePages) {
  const size_t before = PayloadPool::cached_bytes();
  const void* first = nullptr;
  {
    PooledFloats rows((size_t{3} << 20) / sizeof(float));  // 3 MiB: two huge pages
    first = rows.data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (size_t{2} << 20), 0u);
    rows.back() = 1.f;
  }
  EXPECT_EQ(PayloadPool::cached_bytes(), before + (size_t{4} << 20));
  Payload again(size_t{3} << 20);  // the same class, as bytes
  EXPECT_EQ(static_cast<const void*>(again.data()), first);
  EXPECT_EQ(PayloadPool::cached_bytes(), before);
}

TEST(PayloadPoolTest, SmallBuffersAreNotCached) {
  const size_t before = PayloadPool::cached_bytes();
  { Payload small(PayloadPool::kMinPooledBytes - 1); }
  EXPECT_EQ(PayloadPool::cached_bytes(), before);
}

TEST(PayloadPoolTest, TheCacheStaysWithinItsBound) {
  {
    std::vector<Payload> many;
    for (int i = 0; i < 40; ++i) many.emplace_back(size_t{8} << 20);  // 320 MiB in flight
  }
  EXPECT_LE(PayloadPool::cached_bytes(), PayloadPool::kMaxCachedBytes);
  EXPECT_GT(PayloadPool::cached_bytes(), 0u);
}

TEST(PayloadPoolTest, PayloadsCompareWithByteVectors) {
  Payload p(3);
  p[0] = 1, p[1] = 2, p[2] = 3;
  EXPECT_TRUE(p == (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_FALSE(p == (std::vector<uint8_t>{1, 2}));
}

}  // namespace
}  // namespace mmx::transport
