// Helpers shared by the probes in this folder.
#ifndef SLIMLM_KERNELS_PROBE_PROBE_INTERNAL_H_
#define SLIMLM_KERNELS_PROBE_PROBE_INTERNAL_H_

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/kernels/probe.h"

namespace slimlm::kernels::probe {

// Runs fn(share) once on every thread of the pool, share in [0, pool.size()), each on its own
// thread: all threads first meet at a barrier, so the shares run at the same time. Returns the
// seconds from the barrier's release to the end of the last share.
double RunOnEveryThread(ThreadPool& pool, FunctionRef<void(int share)> fn);

// A compute kernel runs `iters` iterations of ops_per_iter operations and returns a value that
// depends on all of them.
struct ComputeKernel {
  uint64_t (*run)(int64_t iters);
  double ops_per_iter;
  std::string_view name;
};

// A read kernel reads n bytes at p (32-byte aligned, n a multiple of kReadStep) and returns the
// OR of all its 64-bit words.
inline constexpr size_t kReadStep = 256;
struct ReadKernel {
  uint64_t (*run)(const uint8_t* p, size_t n);
  std::string_view name;
};

// The kernels this CPU can run, the one the probes use first.
std::vector<ComputeKernel> FmaKernels();
std::vector<ComputeKernel> Int8Kernels();
std::vector<ReadKernel> ReadKernels();

// Runs `kernel` on every pool thread for about `seconds` per repetition; rates in G ops/s.
ProbeStats MeasureCompute(const ComputeKernel& kernel, ThreadPool& pool, double seconds, int reps);

// Keeps a value alive so the compiler cannot drop the computation that made it.
void Consume(uint64_t value);

}  // namespace slimlm::kernels::probe

#endif  // SLIMLM_KERNELS_PROBE_PROBE_INTERNAL_H_
