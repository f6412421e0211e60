#include "base/thread_pool.h"

#include <algorithm>
#include <chrono>

#include <immintrin.h>

namespace mmx {
namespace {

int g_default_threads = 0;
// How long an idle worker spins before it sleeps, by default. Long enough to cover the gap
// between two kernels of one decode step, short enough not to burn a core while idle.
int g_default_spin_micros = 2000;

// Ranges per thread in ParallelFor: more than one, so that a late or slow thread's share can be
// taken by the others.
constexpr int64_t kRangesPerThread = 4;

}  // namespace

ThreadPool::ThreadPool(int num_threads, int spin_micros)
    : num_threads_(std::max(1, num_threads)), spin_micros_(std::max(0, spin_micros)) {
  for (int i = 1; i < num_threads_; ++i) workers_.emplace_back([this] { WorkerLoop(); });
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

void ThreadPool::RunClaimedTasks() {
  for (int64_t i; (i = next_task_.fetch_add(1, std::memory_order_relaxed)) < num_tasks_;) {
    (*task_fn_)(i);
  }
}

void ThreadPool::WorkerLoop() {
  uint64_t seen = 0;
  const auto spin_budget = std::chrono::microseconds(spin_micros_);
  while (true) {
    auto spin_start = std::chrono::steady_clock::now();
    int spins = 0;
    uint64_t current;
    while ((current = generation_.load(std::memory_order_acquire)) == seen) {
      _mm_pause();
      if (++spins % 256 == 0 && std::chrono::steady_clock::now() - spin_start > spin_budget) {
        std::unique_lock<std::mutex> lock(mu_);
        cv_.wait(lock, [&] { return generation_.load(std::memory_order_acquire) != seen; });
      }
    }
    seen = current;
    if (stop_.load()) return;
    // Join only if the job is still open. seq_cst on both sides (here: joined_ then open_job_;
    // in RunTasks: open_job_ then joined_) guarantees the caller sees us or we see it closed.
    joined_.fetch_add(1, std::memory_order_seq_cst);
    if (open_job_.load(std::memory_order_seq_cst) == current) RunClaimedTasks();
    if (joined_.fetch_sub(1, std::memory_order_seq_cst) == 1) {
      // The caller may be asleep waiting for us (see RunTasks); the lock orders this wake-up
      // after its check of joined_.
      std::lock_guard<std::mutex> lock(mu_);
      done_cv_.notify_all();
    }
  }
}

void ThreadPool::RunTasks(int64_t num_tasks, const std::function<void(int64_t)>& fn) {
  if (num_tasks <= 0) return;
  if (num_threads_ == 1 || num_tasks == 1) {
    for (int64_t i = 0; i < num_tasks; ++i) fn(i);
    return;
  }
  std::lock_guard<std::mutex> submit(submit_mu_);
  task_fn_ = &fn;
  num_tasks_ = num_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  {
    // Taking the lock orders the bump against a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    const uint64_t job = generation_.load(std::memory_order_relaxed) + 1;
    open_job_.store(job, std::memory_order_seq_cst);
    generation_.store(job, std::memory_order_release);
  }
  cv_.notify_all();
  RunClaimedTasks();
  // Every task is claimed. Close the job, then wait for the workers that joined it.
  open_job_.store(0, std::memory_order_seq_cst);
  // A joined worker normally finishes its last task within microseconds; one that takes longer
  // was descheduled mid-task (more threads than cores, e.g. several workers on one machine).
  // Spinning then would take the core it needs, so the caller sleeps until it is done.
  for (int spins = 0; joined_.load(std::memory_order_seq_cst) != 0;) {
    _mm_pause();
    if (++spins == 4096) {
      std::unique_lock<std::mutex> lock(mu_);
      done_cv_.wait(lock, [&] { return joined_.load(std::memory_order_seq_cst) == 0; });
      break;
    }
  }
}

void ThreadPool::RunOnAll(const std::function<void(int)>& fn) {
  RunTasks(num_threads_, [&](int64_t i) { fn(static_cast<int>(i)); });
}

void ThreadPool::ParallelFor(int64_t n, int64_t align,
                             const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  align = std::max<int64_t>(1, align);
  const int64_t blocks = (n + align - 1) / align;
  const int64_t ranges = std::min<int64_t>(blocks, num_threads_ * kRangesPerThread);
  if (ranges <= 1 || num_threads_ == 1) {
    fn(0, n);
    return;
  }
  RunTasks(ranges, [&](int64_t r) {
    const int64_t b0 = blocks * r / ranges, b1 = blocks * (r + 1) / ranges;
    fn(std::min(n, b0 * align), std::min(n, b1 * align));
  });
}

ThreadPool& ThreadPool::Default() {
  static ThreadPool* pool = new ThreadPool(
      g_default_threads > 0 ? g_default_threads
                            : static_cast<int>(std::max(1u, std::thread::hardware_concurrency())),
      g_default_spin_micros);
  return *pool;
}

void ThreadPool::SetDefaultThreads(int num_threads) { g_default_threads = num_threads; }

void ThreadPool::SetDefaultSpinMicros(int spin_micros) { g_default_spin_micros = spin_micros; }

}  // namespace mmx
