// A fixed pool of compute threads for the CPU kernels. The calling thread is thread 0 and takes
// part in every job, so ThreadPool(2) starts one extra thread. Between jobs the workers spin
// briefly (decode issues hundreds of small jobs per token, and a futex wake costs more than the
// job) and then sleep. Not reentrant: a job must not submit another job to the same pool.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mmx {

class ThreadPool {
 public:
  explicit ThreadPool(int num_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(thread_index) once on each thread, the caller being index 0; returns when all are done.
  void RunOnAll(const std::function<void(int)>& fn);

  // Splits [0, n) into one contiguous range per thread, each a multiple of `align` long (except
  // the last), and runs fn(begin, end) on them. Small n runs inline on the caller.
  void ParallelFor(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool the kernels use. SetDefaultThreads must be called before first use to
  // take effect; the default is the number of online CPUs.
  static ThreadPool& Default();
  static void SetDefaultThreads(int num_threads);

 private:
  void WorkerLoop(int index);

  const int num_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int)>* job_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
};

}  // namespace mmx
