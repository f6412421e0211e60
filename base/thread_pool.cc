#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>

#include <immintrin.h>

namespace mmx {
namespace {

int g_default_threads = 0;

// How long an idle worker spins before it sleeps. Long enough to cover the gap between two
// kernels of one decode step, short enough not to burn a core while the process idles.
constexpr auto kSpinBudget = std::chrono::microseconds(2000);

}  // namespace

ThreadPool::ThreadPool(int num_threads) : num_threads_(std::max(1, num_threads)) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

void ThreadPool::WorkerLoop(int index) {
  uint64_t seen = 0;
  while (true) {
    auto spin_start = std::chrono::steady_clock::now();
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      _mm_pause();
      if (++spins % 256 == 0 && std::chrono::steady_clock::now() - spin_start > kSpinBudget) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    (*job_)(index);
    pending_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::RunOnAll(const std::function<void(int)>& fn) {
  if (num_threads_ == 1) {
    fn(0);
    return;
  }
  job_ = &fn;
  pending_.store(num_threads_ - 1, std::memory_order_release);
  {
    // Taking the lock orders the bump against a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  cv_.notify_all();
  fn(0);
  while (pending_.load(std::memory_order_acquire) != 0) _mm_pause();
}

void ThreadPool::ParallelFor(int64_t n, int64_t align,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  align = std::max<int64_t>(1, align);
  int64_t blocks = (n + align - 1) / align;
  int parts = static_cast<int>(std::min<int64_t>(num_threads_, blocks));
  if (parts <= 1) {
    fn(0, n);
    return;
  }
  RunOnAll([&](int t) {
    if (t >= parts) return;
    int64_t b0 = blocks * t / parts, b1 = blocks * (t + 1) / parts;
    fn(std::min(n, b0 * align), std::min(n, b1 * align));
  });
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool* pool = new ThreadPool(
      g_default_threads > 0 ? g_default_threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  return *pool;
}

void ThreadPool::SetDefaultThreads(int num_threads) { g_default_threads = num_threads; }

}  // namespace mmx
