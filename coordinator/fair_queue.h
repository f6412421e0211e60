// FairQueue: the scheduler's waiting room. Items are queued per source (a Generate caller, a
// batch job) and popped round-robin over the sources that have items, FIFO within a source, so
// a 10,000-request job and an interactive request arriving behind it take turns instead of the
// interactive one waiting for the whole job.
#pragma once

#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <string>

namespace mmx::coordinator {

template <typename T>
class FairQueue {
 public:
  void Push(const std::string& source, T item) {
    std::deque<T>& q = queues_[source];
    if (q.empty()) order_.push_back(source);
    q.push_back(std::move(item));
    ++size_;
  }
  // Puts `item` first: first of its source, and its source's turn next.
  void PushFront(const std::string& source, T item) {
    std::deque<T>& q = queues_[source];
    if (!q.empty()) std::erase(order_, source);
    order_.push_front(source);
    q.push_front(std::move(item));
    ++size_;
  }
  bool empty() const { return size_ == 0; }
  size_t size() const { return size_; }
  // The item Pop() would return (queue must not be empty).
  T& Front() { return queues_.at(order_.front()).front(); }
  T Pop() {
    const std::string source = order_.front();
    order_.pop_front();
    std::deque<T>& q = queues_.at(source);
    T item = std::move(q.front());
    q.pop_front();
    --size_;
    if (q.empty()) {
      queues_.erase(source);
    } else {
      order_.push_back(source);  // its next item waits for the other sources' turns
    }
    return item;
  }
  // Calls `visit` on every item, in no particular order.
  void ForEach(const std::function<void(const T&)>& visit) const {
    for (const auto& [source, q] : queues_) {
      for (const T& item : q) visit(item);
    }
  }
  // Removes (and passes to `removed`) every item for which `drop` is true.
  void RemoveIf(const std::function<bool(const T&)>& drop, const std::function<void(T&)>& removed) {
    for (auto it = order_.begin(); it != order_.end();) {
      std::deque<T>& q = queues_.at(*it);
      for (auto i = q.begin(); i != q.end();) {
        if (drop(*i)) {
          removed(*i);
          i = q.erase(i);
          --size_;
        } else {
          ++i;
        }
      }
      if (q.empty()) {
        queues_.erase(*it);
        it = order_.erase(it);
      } else {
        ++it;
      }
    }
  }

 private:
  std::map<std::string, std::deque<T>> queues_;
  std::deque<std::string> order_;  // sources with items, in turn order
  size_t size_ = 0;
};

}  // namespace mmx::coordinator
