#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "kernels/probe/probe_internal.h"
#include "slimlm/kernels/probe.h"

namespace slimlm::kernels {

ProbeStats SummarizeRates(std::vector<double> samples, int threads) {
  SLIMLM_CHECK(!samples.empty()) << "no samples";
  std::sort(samples.begin(), samples.end());
  const size_t n = samples.size();
  ProbeStats stats;
  stats.best = samples.back();
  stats.median = n % 2 == 1 ? samples[n / 2] : 0.5 * (samples[n / 2 - 1] + samples[n / 2]);
  stats.reps = static_cast<int>(n);
  stats.threads = threads;
  return stats;
}

namespace probe {

double RunOnEveryThread(ThreadPool& pool, FunctionRef<void(int share)> fn) {
  using Clock = std::chrono::steady_clock;
  const int n = pool.size();
  std::atomic<int> ready{0};
  std::vector<Clock::time_point> start(static_cast<size_t>(n)), end(static_cast<size_t>(n));
  // The pool hands out tasks dynamically; the barrier makes every task wait until all n have
  // started, which can only happen with each task on a different thread.
  pool.Run(n, [&](int64_t task, int) {
    ready.fetch_add(1, std::memory_order_acq_rel);
    while (ready.load(std::memory_order_acquire) < n) std::this_thread::yield();
    const size_t i = static_cast<size_t>(task);
    start[i] = Clock::now();
    fn(static_cast<int>(task));
    end[i] = Clock::now();
  });
  const auto first = *std::min_element(start.begin(), start.end());
  const auto last = *std::max_element(end.begin(), end.end());
  return std::chrono::duration<double>(last - first).count();
}

void Consume(uint64_t value) {
  static std::atomic<uint64_t> sink{0};
  sink.fetch_xor(value, std::memory_order_relaxed);
}

}  // namespace probe
}  // namespace slimlm::kernels
