// A fixed pool of compute threads for the CPU kernels. The calling thread takes part in every
// job, so ThreadPool(2) starts one extra thread.
//
// Jobs are split into tasks that participants claim from a shared counter. That matters on a
// shared or oversubscribed machine: if a worker is descheduled, the caller runs its tasks
// instead of waiting a whole scheduler tick for it, and a worker that wakes after the job is
// done does not join it at all (the caller waits only for workers that actually joined).
// Between jobs the workers spin briefly (decode issues hundreds of small jobs per token, and a
// futex wake costs more than the job) and then sleep.
//
// Jobs from different caller threads are serialised (a worker's stage thread and expert thread
// share one pool). Not reentrant: a task must not submit another job to the same pool.
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
  // spin_micros: how long an idle worker spins before it sleeps (see the class comment).
  explicit ThreadPool(int num_threads, int spin_micros = 2000);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int num_threads() const { return num_threads_; }

  // Runs fn(i) exactly once for each i in [0, num_threads()), concurrently where threads are
  // free; returns when all have returned. Which thread runs which index is not fixed.
  void RunOnAll(const std::function<void(int)>& fn);

  // Runs fn(i) exactly once for each i in [0, num_tasks), spread over the threads.
  void RunTasks(int64_t num_tasks, const std::function<void(int64_t)>& fn);

  // Splits [0, n) into contiguous ranges, each a multiple of `align` long (except the last),
  // a few per thread, and runs fn(begin, end) on each. Small n runs inline on the caller.
  void ParallelFor(int64_t n, int64_t align, const std::function<void(int64_t, int64_t)>& fn);

  // The process-wide pool the kernels use. SetDefaultThreads must be called before first use to
  // take effect; the default is the number of online CPUs.
  static ThreadPool& Default();
  static void SetDefaultThreads(int num_threads);
  // A process that shares its cores with others (a worker waiting on the network while another
  // worker computes) should spin little: its idle threads would take the others' CPU.
  static void SetDefaultSpinMicros(int spin_micros);

 private:
  void WorkerLoop();
  // Claims and runs tasks of the current job until none are left.
  void RunClaimedTasks();

  const int num_threads_;
  const int spin_micros_;
  std::vector<std::thread> workers_;

  // The current job. Written by the caller before it bumps generation_.
  const std::function<void(int64_t)>* task_fn_ = nullptr;
  int64_t num_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<uint64_t> generation_{0};  // bumped once per job
  std::atomic<uint64_t> open_job_{0};    // generation a worker may still join; 0 = closed
  std::atomic<int> joined_{0};           // workers inside the current job

  std::mutex submit_mu_;  // one job at a time, whichever thread submits it
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  std::condition_variable cv_;
  std::condition_variable done_cv_;  // the last joined worker left the job
};

}  // namespace mmx
