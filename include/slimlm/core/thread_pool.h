// A persistent pool of worker threads for data-parallel loops.
//
// Run(n_tasks, fn) calls fn(task, thread) for every task in [0, n_tasks) spread over the pool's
// threads, and returns when all are done. The calling thread takes part as thread 0, so a pool of
// one thread runs everything inline. Between calls workers spin for a short while (so back-to-back
// calls, as in decoding, start without a wake-up), then sleep. No memory is allocated per call
// (the callback is a non-owning FunctionRef). Run is not reentrant and is meant to be called
// from one thread at a time (the model's forward pass); calls from several threads are serialized.
#ifndef SLIMLM_CORE_THREAD_POOL_H_
#define SLIMLM_CORE_THREAD_POOL_H_

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <vector>

#include "slimlm/core/function_ref.h"

namespace slimlm {

class ThreadPool {
 public:
  // Starts n_threads - 1 workers (n_threads >= 1).
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(task, thread_index) once per task; tasks are claimed dynamically, in order.
  // fn must not throw.
  void Run(int64_t n_tasks, FunctionRef<void(int64_t task, int thread)> fn);

  // Splits [0, n) into one contiguous range per thread (some may be empty) and calls
  // fn(begin, end, thread) for each. For work whose cost is uniform per item.
  void ParallelFor(int64_t n, FunctionRef<void(int64_t begin, int64_t end, int thread)> fn);

 private:
  void WorkerLoop(int thread_index);
  void RunTasks(int thread_index);

  const int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex run_mu_;  // Serializes Run calls.

  std::mutex mu_;  // Guards sleeping: workers wait on wake_ after spinning.
  std::condition_variable wake_;
  std::atomic<uint64_t> generation_{0};  // Incremented per Run.
  std::atomic<bool> stop_{false};
  std::atomic<int> sleepers_{0};

  const FunctionRef<void(int64_t, int)>* job_ = nullptr;
  int64_t n_tasks_ = 0;
  std::atomic<int64_t> next_task_{0};
  std::atomic<int> busy_workers_{0};
};

// The number of physical cores (hyper-threads counted once), at least 1.
int PhysicalCoreCount();

}  // namespace slimlm

#endif  // SLIMLM_CORE_THREAD_POOL_H_
