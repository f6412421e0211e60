// PooledBuffer<T>: a growable array of trivially copyable T in BufferPool memory, with the subset
// of std::vector's interface the data plane uses. What std::vector cannot do is the reason it
// exists: ReleaseAs<U>() hands the same memory on as a buffer of another element type, so the
// bytes a transport received (rendezvous data lands in them directly) become a stage's
// activation rows or an MoE part's results without a copy. New elements are left uninitialized
// (a receive or a kernel overwrites them at once).
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <iterator>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "base/buffer_pool.h"

namespace mmx {

template <class T>
class PooledBuffer {
  static_assert(std::is_trivially_copyable_v<T>, "PooledBuffer copies its elements as bytes");

 public:
  using value_type = T;
  using size_type = size_t;
  using difference_type = ptrdiff_t;
  using reference = T&;
  using const_reference = const T&;
  using pointer = T*;
  using const_pointer = const T*;
  using iterator = T*;
  using const_iterator = const T*;

  PooledBuffer() = default;
  explicit PooledBuffer(size_t n) { resize(n); }
  PooledBuffer(size_t n, const T& value) { assign(n, value); }
  PooledBuffer(std::initializer_list<T> values) { assign(values.begin(), values.end()); }
  PooledBuffer(const PooledBuffer& other) { assign(other.begin(), other.end()); }
  PooledBuffer(PooledBuffer&& other) noexcept { swap(other); }
  PooledBuffer& operator=(const PooledBuffer& other) {
    if (this != &other) assign(other.begin(), other.end());
    return *this;
  }
  PooledBuffer& operator=(PooledBuffer&& other) noexcept {
    PooledBuffer taken(std::move(other));
    swap(taken);
    return *this;
  }
  PooledBuffer& operator=(std::initializer_list<T> values) {
    assign(values.begin(), values.end());
    return *this;
  }
  ~PooledBuffer() { BufferPool::Free(data_, capacity_ * sizeof(T)); }

  T* data() { return data_; }
  const T* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return capacity_; }
  bool empty() const { return size_ == 0; }
  T* begin() { return data_; }
  T* end() { return data_ + size_; }
  const T* begin() const { return data_; }
  const T* end() const { return data_ + size_; }
  T& operator[](size_t i) { return data_[i]; }
  const T& operator[](size_t i) const { return data_[i]; }
  T& front() { return data_[0]; }
  T& back() { return data_[size_ - 1]; }

  void reserve(size_t n) {
    if (n <= capacity_) return;
    T* grown = static_cast<T*>(BufferPool::Allocate(n * sizeof(T)));
    if (size_ > 0) std::memcpy(grown, data_, size_ * sizeof(T));
    BufferPool::Free(data_, capacity_ * sizeof(T));
    data_ = grown;
    capacity_ = n;
  }
  // Keeps the first min(n, size()) elements; new ones are uninitialized.
  void resize(size_t n) {
    reserve(n);
    size_ = n;
  }
  void clear() { size_ = 0; }
  void assign(size_t n, const T& value) {
    clear();
    resize(n);
    std::fill_n(data_, n, value);
  }
  template <std::forward_iterator ForwardIt>
  void assign(ForwardIt first, ForwardIt last) {
    clear();
    resize(static_cast<size_t>(std::distance(first, last)));
    std::copy(first, last, data_);
  }
  // Removes [first, last), moving the tail down (one memmove).
  T* erase(const T* first, const T* last) {
    T* at = data_ + (first - data_);
    const size_t tail = static_cast<size_t>(end() - last);
    if (tail > 0) std::memmove(at, last, tail * sizeof(T));
    size_ -= static_cast<size_t>(last - first);
    return at;
  }
  void swap(PooledBuffer& other) noexcept {
    std::swap(data_, other.data_);
    std::swap(size_, other.size_);
    std::swap(capacity_, other.capacity_);
  }

  // This buffer's memory as a PooledBuffer<U>, with no copy, when its size and capacity are
  // whole U's and its address is aligned for U; this buffer is then empty. Otherwise nullopt,
  // and this buffer is left as it was.
  template <class U>
  std::optional<PooledBuffer<U>> ReleaseAs() {
    const size_t bytes = size_ * sizeof(T), capacity_bytes = capacity_ * sizeof(T);
    if (bytes % sizeof(U) != 0 || capacity_bytes % sizeof(U) != 0 ||
        reinterpret_cast<uintptr_t>(data_) % alignof(U) != 0) {
      return std::nullopt;
    }
    PooledBuffer<U> out;
    out.data_ = reinterpret_cast<U*>(data_);
    out.size_ = bytes / sizeof(U);
    out.capacity_ = capacity_bytes / sizeof(U);
    data_ = nullptr;
    size_ = capacity_ = 0;
    return out;
  }

 private:
  template <class>
  friend class PooledBuffer;

  T* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;  // elements allocated (BufferPool::Free needs the allocated size)
};

// Buffers compare with vectors of their element type (tests build expected contents that way).
template <class T, class A>
bool operator==(const PooledBuffer<T>& a, const std::vector<T, A>& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin());
}

}  // namespace mmx
