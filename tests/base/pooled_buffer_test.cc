// The buffer pool: a freed large buffer is handed out again for the next buffer of its size
// class (no fresh pages), small ones go to the heap, large ones are huge pages, and the cache
// is bounded. PooledBuffer: vector-like, and its memory can change element type with no copy.
#include "base/pooled_buffer.h"

#include <cstdint>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace mmx {
namespace {

using Payload = PooledBuffer<uint8_t>;
using PooledFloats = PooledBuffer<float>;

TEST(BufferPoolTest, AFreedLargeBufferServesTheNextMessageOfItsSizeClass) {
  const uint8_t* first = nullptr;
  {
    Payload a(1 << 20);
    first = a.data();
  }
  const size_t cached = BufferPool::cached_bytes();
  Payload b((1 << 20) - 100);  // same class (four per power of two)
  EXPECT_EQ(b.data(), first);
  EXPECT_EQ(BufferPool::cached_bytes(), cached - (size_t{2} << 20));  // taken from the cache
}

// From 1 MiB up a buffer is whole 2 MiB pages (asked to be transparent huge pages, so that a CMA
// rendezvous pins and copies few pages), and the cache counts the whole pages it keeps.
TEST(BufferPoolTest, LargeBuffersAreWholeAlignedHugePages) {
  const void* first = nullptr;
  {
    PooledFloats rows((size_t{3} << 20) / sizeof(float));  // 3 MiB: two huge pages
    first = rows.data();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % (size_t{2} << 20), 0u);
    rows.back() = 1.f;
  }
  const size_t cached = BufferPool::cached_bytes();
  Payload again(size_t{3} << 20);  // the same class, as bytes
  EXPECT_EQ(static_cast<const void*>(again.data()), first);
  EXPECT_EQ(BufferPool::cached_bytes(), cached - (size_t{4} << 20));  // the cache counted both pages
}

TEST(BufferPoolTest, SmallBuffersAreNotCached) {
  const size_t before = BufferPool::cached_bytes();
  { Payload small(BufferPool::kMinPooledBytes - 1); }
  EXPECT_EQ(BufferPool::cached_bytes(), before);
}

TEST(BufferPoolTest, TheCacheStaysWithinItsBound) {
  {
    std::vector<Payload> many;
    for (int i = 0; i < 40; ++i) many.emplace_back(size_t{8} << 20);  // 320 MiB in flight
  }
  EXPECT_LE(BufferPool::cached_bytes(), BufferPool::kMaxCachedBytes);
  EXPECT_GT(BufferPool::cached_bytes(), 0u);
}

// A burst of one shape fills the cache; a buffer of another shape freed afterwards still gets
// cached (the full class gives a buffer up), so the shape in use now is served from the cache.
TEST(BufferPoolTest, AFullCacheMakesRoomForTheSizeClassInUse) {
  {
    std::vector<Payload> burst;
    for (int i = 0; i < 40; ++i) burst.emplace_back(size_t{8} << 20);  // 320 MiB in flight
  }
  ASSERT_EQ(BufferPool::cached_bytes(), BufferPool::kMaxCachedBytes);  // 32 of them: full
  const size_t other_bytes = size_t{5} << 20;  // a class no other test uses: 6 MiB of pages
  { Payload other(other_bytes); }
  const size_t with_other = BufferPool::cached_bytes();
  EXPECT_EQ(with_other, BufferPool::kMaxCachedBytes - (size_t{8} << 20) + (size_t{6} << 20));
  Payload again(other_bytes);
  EXPECT_EQ(BufferPool::cached_bytes(), with_other - (size_t{6} << 20));  // taken from the cache
}

TEST(PooledBufferTest, ResizeKeepsTheElementsItHadAndAssignReplacesThem) {
  Payload p = {1, 2, 3};
  p.resize(size_t{100} << 10);  // grows into a pooled buffer
  EXPECT_EQ(p[0], 1);
  EXPECT_EQ(p[2], 3);
  p.resize(2);
  EXPECT_EQ(std::vector<uint8_t>(p.begin(), p.end()), (std::vector<uint8_t>{1, 2}));
  const std::vector<uint8_t> bytes = {9, 8, 7, 6};
  p.assign(bytes.begin(), bytes.end());
  EXPECT_EQ(std::vector<uint8_t>(p.begin(), p.end()), bytes);
  p.erase(p.begin(), p.begin() + 1);
  EXPECT_EQ(std::vector<uint8_t>(p.begin(), p.end()), (std::vector<uint8_t>{8, 7, 6}));
  Payload copy = p;
  EXPECT_EQ(std::vector<uint8_t>(copy.begin(), copy.end()), (std::vector<uint8_t>{8, 7, 6}));
  EXPECT_NE(copy.data(), p.data());
  Payload moved = std::move(copy);
  EXPECT_TRUE(copy.empty());
  EXPECT_EQ(moved.size(), 3u);
}

// A received message's bytes become float rows with no copy: same memory, and freeing the
// floats frees the buffer into its size class (the bytes' allocation size is kept).
TEST(PooledBufferTest, BytesBecomeFloatsWithoutACopy) {
  const size_t bytes = size_t{768} << 10;  // a decode message's rows
  const void* memory = nullptr;
  {
    Payload payload(bytes);
    const float one = 1.f, two = 2.f;
    std::memcpy(payload.data(), &one, 4);
    std::memcpy(payload.data() + bytes - 4, &two, 4);
    memory = payload.data();
    std::optional<PooledFloats> rows = payload.ReleaseAs<float>();
    ASSERT_TRUE(rows.has_value());
    EXPECT_EQ(static_cast<const void*>(rows->data()), memory);
    EXPECT_EQ(rows->size(), bytes / 4);
    EXPECT_EQ(rows->front(), 1.f);
    EXPECT_EQ(rows->back(), 2.f);
    EXPECT_TRUE(payload.empty());
    EXPECT_EQ(payload.data(), nullptr);
  }
  const size_t cached = BufferPool::cached_bytes();
  Payload again(bytes);  // the same size class: the same memory, from the cache
  EXPECT_EQ(static_cast<const void*>(again.data()), memory);
  EXPECT_EQ(BufferPool::cached_bytes(), cached - (size_t{2} << 20));  // one huge page
}

TEST(PooledBufferTest, BytesThatAreNotWholeFloatsStayBytes) {
  Payload payload(10);
  EXPECT_FALSE(payload.ReleaseAs<float>().has_value());
  EXPECT_EQ(payload.size(), 10u);
  Payload grown(8);
  grown.reserve(9);  // capacity not whole floats: the pool could not be given its size back
  EXPECT_FALSE(grown.ReleaseAs<float>().has_value());
  EXPECT_EQ(grown.size(), 8u);
}

}  // namespace
}  // namespace mmx
