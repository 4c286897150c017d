#include "slimlm/core/thread_pool.h"

#include <algorithm>
#include <chrono>
#include <fstream>
#include <set>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include "slimlm/core/check.h"

namespace slimlm {
namespace {

// A worker polls for new work this long before sleeping. Decoding one token issues a parallel
// call every few tens of microseconds; waking a sleeping thread costs about as much, so workers
// that spin between calls keep the cores busy with work rather than with wake-ups.
constexpr auto kSpinTime = std::chrono::milliseconds(2);

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int i = 1; i < n_threads_; ++i) workers_.emplace_back([this, i] { WorkerLoop(i); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_.store(true, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& worker : workers_) worker.join();
}

void ThreadPool::RunTasks(int thread_index) {
  while (true) {
    int64_t task = next_task_.fetch_add(1, std::memory_order_relaxed);
    if (task >= n_tasks_) break;
    (*job_)(task, thread_index);
  }
}

void ThreadPool::WorkerLoop(int thread_index) {
  uint64_t seen = 0;
  while (true) {
    // Spin first, then sleep until Run publishes a new generation.
    auto spin_until = std::chrono::steady_clock::now() + kSpinTime;
    uint64_t gen = generation_.load(std::memory_order_acquire);
    while (gen == seen && !stop_.load(std::memory_order_acquire)) {
      if (std::chrono::steady_clock::now() > spin_until) {
        std::unique_lock<std::mutex> lock(mu_);
        sleepers_.fetch_add(1, std::memory_order_acq_rel);
        wake_.wait(lock, [&] {
          return stop_.load(std::memory_order_acquire) ||
                 generation_.load(std::memory_order_acquire) != seen;
        });
        sleepers_.fetch_sub(1, std::memory_order_acq_rel);
      }
      // Yielding keeps a spinning worker from starving another thread that shares its core
      // (more threads than free cores, or other processes).
      std::this_thread::yield();
      gen = generation_.load(std::memory_order_acquire);
    }
    if (stop_.load(std::memory_order_acquire)) return;
    seen = gen;
    RunTasks(thread_index);
    busy_workers_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

void ThreadPool::Run(int64_t n_tasks, FunctionRef<void(int64_t, int)> fn) {
  if (n_tasks <= 0) return;
  if (n_threads_ == 1 || n_tasks == 1) {
    for (int64_t t = 0; t < n_tasks; ++t) fn(t, 0);
    return;
  }
  std::lock_guard<std::mutex> run_lock(run_mu_);
  job_ = &fn;
  n_tasks_ = n_tasks;
  next_task_.store(0, std::memory_order_relaxed);
  busy_workers_.store(n_threads_ - 1, std::memory_order_relaxed);
  {
    // The lock orders the publication with a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mu_);
    generation_.fetch_add(1, std::memory_order_acq_rel);
  }
  if (sleepers_.load(std::memory_order_acquire) > 0) wake_.notify_all();
  RunTasks(0);
  // Workers finish within the time of one task; waiting by spinning avoids another wake-up, and
  // yielding lets a worker that shares this core finish.
  for (int i = 0; busy_workers_.load(std::memory_order_acquire) != 0; ++i) {
    if (i < 256) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
  job_ = nullptr;
}

void ThreadPool::ParallelFor(int64_t n, FunctionRef<void(int64_t, int64_t, int)> fn) {
  if (n <= 0) return;
  const int64_t parts = std::min<int64_t>(n_threads_, n);
  Run(parts, [&](int64_t part, int thread) {
    int64_t begin = n * part / parts;
    int64_t end = n * (part + 1) / parts;
    fn(begin, end, thread);
  });
}

int PhysicalCoreCount() {
  // Count distinct (physical id, core id) pairs; fall back to the logical count.
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::set<std::pair<int, int>> cores;
  int physical = 0;
  std::string line;
  while (std::getline(cpuinfo, line)) {
    auto value = [&] { return std::atoi(line.substr(line.find(':') + 1).c_str()); };
    if (line.rfind("physical id", 0) == 0) physical = value();
    if (line.rfind("core id", 0) == 0) cores.insert({physical, value()});
  }
  int logical = static_cast<int>(std::thread::hardware_concurrency());
  int count = cores.empty() ? logical : static_cast<int>(cores.size());
  return std::max(1, count);
}

}  // namespace slimlm
