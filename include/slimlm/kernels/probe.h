// Probes that measure this machine's physical limits: sustained memory read bandwidth, peak
// FP32 FMA throughput and peak int8 dot-product throughput, plus what the system says about its
// CPUs, caches and memory. These are the denominators of every speed figure (DESIGN.md §4):
// decode cannot beat bandwidth / bytes read per token, prefill cannot beat the compute peak.
//
// Each probe picks the widest instructions this CPU has at run time (GetCpuFeatures), so the
// binary stays portable; a plain C++ loop runs everywhere else. Probes run on the threads of a
// ThreadPool, one contiguous share of the work per thread, all threads starting together.
// Units: GB/s is 1e9 bytes per second, GFLOP/s and GOP/s count a multiply and an add as two.
#ifndef SLIMLM_KERNELS_PROBE_H_
#define SLIMLM_KERNELS_PROBE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/function_ref.h"
#include "slimlm/core/status.h"
#include "slimlm/core/thread_pool.h"

namespace slimlm::kernels {

// Repeated measurements of one rate: the best (highest) and the median repetition.
struct ProbeStats {
  double best = 0.0;
  double median = 0.0;
  int reps = 0;
  int threads = 0;
};

// Best and median of `samples` (rates), which must not be empty.
ProbeStats SummarizeRates(std::vector<double> samples, int threads);

// A buffer far beyond the last-level cache, allocated and touched once (so page faults are not
// measured), then read again and again. Create one and keep it to probe bandwidth cheaply
// before and after every benchmark: 256 MiB read 5 times takes about 0.1 s at 20 GB/s.
// Not thread-safe; Measure uses the pool it is given.
class ReadBandwidthProbe {
 public:
  // Maps `bytes` (at least 2 MiB; transparent huge pages requested) and writes every page with
  // the pool's threads, each its own share. Errors: out of memory.
  static Result<std::unique_ptr<ReadBandwidthProbe>> Create(ThreadPool& pool, size_t bytes);
  ~ReadBandwidthProbe();
  ReadBandwidthProbe(const ReadBandwidthProbe&) = delete;
  ReadBandwidthProbe& operator=(const ReadBandwidthProbe&) = delete;

  // Reads the whole buffer `reps` times (reps >= 1), each pool thread one contiguous share, and
  // returns GB/s per repetition summarized. The time of a repetition runs from the moment every
  // thread is ready to the moment the last one finishes.
  ProbeStats Measure(ThreadPool& pool, int reps) const;

  size_t bytes() const { return bytes_; }

 private:
  ReadBandwidthProbe(void* mapping, size_t mapped, const uint8_t* data, size_t bytes)
      : mapping_(mapping), mapped_(mapped), data_(data), bytes_(bytes) {}
  void* mapping_;  // The whole mapping, mapped_ bytes.
  size_t mapped_;
  const uint8_t* data_;  // bytes_ bytes inside it, 2 MiB aligned.
  size_t bytes_;
};

// The quick probe that `slimlm bench` runs before and after every test.
inline constexpr size_t kQuickProbeBytes = size_t{256} << 20;
inline constexpr int kQuickProbeReps = 5;

// Creates a probe of `bytes` and measures it once: the full `slimlm hw` measurement.
Result<ProbeStats> MeasureReadBandwidth(ThreadPool& pool, size_t bytes, int reps);

// Peak FP32 multiply-add throughput in GFLOP/s: every pool thread runs independent chains of
// fused multiply-adds (16 zmm or 12 ymm accumulators with distinct starting values, so the
// compiler cannot merge them) for about `seconds` per repetition.
ProbeStats MeasureFmaThroughput(ThreadPool& pool, double seconds, int reps);

// Peak int8 dot-product throughput in GOP/s (each u8 x s8 product and its addition count as
// two operations): AVX-512 VNNI vpdpbusd, AVX-VNNI, AVX2 vpmaddubsw + vpmaddwd, or C++.
ProbeStats MeasureInt8Throughput(ThreadPool& pool, double seconds, int reps);

// The instructions each probe uses on this CPU, e.g. "avx2 256-bit loads", "avx512 fma".
std::string_view ReadBandwidthMethod();
std::string_view FmaMethod();
std::string_view Int8Method();

// One cache as the system describes it (Linux: /sys/devices/system/cpu/cpu0/cache).
struct CacheInfo {
  int level = 0;
  std::string type;   // "Data", "Instruction", "Unified".
  size_t bytes = 0;   // Size of one instance.
  int shared_by = 1;  // Logical CPUs sharing one instance.
};

// What the system says about this machine; fields it does not know stay 0, empty or "unknown".
struct MachineInfo {
  std::string cpu_model;
  int physical_cores = 0;
  int logical_cpus = 0;  // CPUs this process may run on (its affinity mask).
  std::string features;  // CpuFeatures::ToString().
  std::vector<CacheInfo> caches;
  uint64_t memory_bytes = 0;            // Total physical memory.
  uint64_t memory_available_bytes = 0;  // MemAvailable from /proc/meminfo.

  // The data or unified cache of a level (1, 2, 3), or null.
  const CacheInfo* DataCache(int level) const;
};

MachineInfo DescribeMachine();

// The CPUs this process may run on, at least 1.
int UsableCpuCount();

struct LimitsOptions {
  int threads = 0;                           // For the all-threads figures; 0: UsableCpuCount().
  size_t bandwidth_bytes = size_t{1} << 30;  // Read-bandwidth buffer.
  int bandwidth_reps = 10;                   // Reads of the whole buffer per thread count.
  // Compute probes: many short repetitions, so that the best of them catches a moment when the
  // cores were not shared with other work (on a busy machine long runs only measure its load).
  int compute_reps = 40;
  double compute_seconds = 0.005;
};

// Every limit at 1 thread and at all threads.
struct HardwareLimits {
  int threads_all = 0;
  size_t bandwidth_bytes = 0;
  ProbeStats read_bw_1t, read_bw_all;        // GB/s
  ProbeStats fma_gflops_1t, fma_gflops_all;  // GFLOP/s
  ProbeStats int8_gops_1t, int8_gops_all;    // GOP/s
};

// Runs every probe; on_step(done, total, name) is called before each of the 6 steps and once at
// the end (done == total), for progress output.
Result<HardwareLimits> MeasureHardwareLimits(
    const LimitsOptions& options, FunctionRef<void(int done, int total, std::string_view)> on_step);

}  // namespace slimlm::kernels

#endif  // SLIMLM_KERNELS_PROBE_H_
