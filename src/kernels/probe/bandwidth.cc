// Sustained memory read bandwidth.
//
// Each thread reads one contiguous share of a buffer far larger than the last-level cache with
// a single sequential stream and eight independent OR accumulators (no dependency chain limits
// the loads). Measured on a Zen 4 machine (1 thread, 1 GiB, best of 5-10): 256-bit loads read
// 3-15% more than 512-bit loads, two or four interleaved streams per thread 20-50% less (they
// defeat the hardware prefetcher), software prefetch 1 or 4 KiB ahead 5-20% less; 2 MiB pages
// add about 20% by sparing TLB misses. So: one stream, 256-bit loads, huge pages requested.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "kernels/probe/probe_internal.h"
#include "slimlm/core/cpu_features.h"
#include "slimlm/kernels/probe.h"

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace slimlm::kernels {
namespace {

constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kShareAlign = 4096;  // Shares start on page boundaries.
using probe::kReadStep;

uint64_t ReadPortable(const uint8_t* p, size_t n) {
  uint64_t acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  for (size_t offset = 0; offset < n; offset += kReadStep) {
    const uint64_t* q = reinterpret_cast<const uint64_t*>(p + offset);
    for (int i = 0; i < 32; ++i) acc[i % 8] |= q[i];
  }
  return acc[0] | acc[1] | acc[2] | acc[3] | acc[4] | acc[5] | acc[6] | acc[7];
}

#if defined(__x86_64__)
__attribute__((target("avx2"))) uint64_t ReadAvx2(const uint8_t* p, size_t n) {
  __m256i acc[8];
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_si256();
  for (size_t offset = 0; offset < n; offset += kReadStep) {
    const __m256i* q = reinterpret_cast<const __m256i*>(p + offset);
#pragma GCC unroll 8
    for (int i = 0; i < 8; ++i) acc[i] = _mm256_or_si256(acc[i], _mm256_load_si256(q + i));
  }
  for (int i = 1; i < 8; ++i) acc[0] = _mm256_or_si256(acc[0], acc[i]);
  return static_cast<uint64_t>(_mm256_extract_epi64(acc[0], 0) | _mm256_extract_epi64(acc[0], 1) |
                               _mm256_extract_epi64(acc[0], 2) | _mm256_extract_epi64(acc[0], 3));
}
#endif

// Bytes of each thread's share: equal, page-aligned, together at most `bytes`.
size_t ShareBytes(size_t bytes, int threads) {
  const size_t share = bytes / static_cast<size_t>(threads) / kShareAlign * kShareAlign;
  SLIMLM_CHECK(share > 0) << bytes << " bytes cannot be shared by " << threads << " threads";
  return share;
}

}  // namespace

std::vector<probe::ReadKernel> probe::ReadKernels() {
  std::vector<ReadKernel> kernels;
#if defined(__x86_64__)
  if (GetCpuFeatures().avx2) {
    kernels.push_back({ReadAvx2, "avx2 256-bit loads, 1 stream per thread"});
  }
#endif
  kernels.push_back({ReadPortable, "64-bit loads, 1 stream per thread"});
  return kernels;
}

std::string_view ReadBandwidthMethod() { return probe::ReadKernels().front().name; }

Result<std::unique_ptr<ReadBandwidthProbe>> ReadBandwidthProbe::Create(ThreadPool& pool,
                                                                       size_t bytes) {
  const size_t used = (std::max(bytes, kHugePage) + kHugePage - 1) / kHugePage * kHugePage;
  const size_t mapped = used + kHugePage;  // Room to align the start.
  void* raw = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    return ResourceExhaustedError("cannot map {} bytes for the bandwidth probe: {}", mapped,
                                  std::strerror(errno));
  }
  // Start on a huge-page boundary so that every 2 MiB of the buffer can be one page.
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  uint8_t* data = reinterpret_cast<uint8_t*>((base + kHugePage - 1) / kHugePage * kHugePage);
#if defined(MADV_HUGEPAGE)
  ::madvise(data, used, MADV_HUGEPAGE);  // A hint: without huge pages the probe still works.
#endif
  // Each thread writes its own part first, so on NUMA machines the pages sit near the reader.
  // Every byte is written: an untouched page would be read from the shared zero page.
  const size_t n = static_cast<size_t>(pool.size());
  probe::RunOnEveryThread(pool, [&](int i) {
    const size_t begin = used * static_cast<size_t>(i) / n;
    const size_t end = used * static_cast<size_t>(i + 1) / n;
    std::memset(data + begin, i + 1, end - begin);
  });
  return std::unique_ptr<ReadBandwidthProbe>(new ReadBandwidthProbe(raw, mapped, data, used));
}

ReadBandwidthProbe::~ReadBandwidthProbe() { ::munmap(mapping_, mapped_); }

ProbeStats ReadBandwidthProbe::Measure(ThreadPool& pool, int reps) const {
  SLIMLM_CHECK(reps >= 1) << "reps " << reps;
  const probe::ReadKernel read = probe::ReadKernels().front();
  const size_t share = ShareBytes(bytes_, pool.size());
  const size_t total = share * static_cast<size_t>(pool.size());
  std::vector<double> rates;
  for (int r = 0; r < reps; ++r) {
    const double seconds = probe::RunOnEveryThread(pool, [&](int i) {
      probe::Consume(read.run(data_ + share * static_cast<size_t>(i), share));
    });
    rates.push_back(static_cast<double>(total) / seconds / 1e9);
  }
  return SummarizeRates(std::move(rates), pool.size());
}

Result<ProbeStats> MeasureReadBandwidth(ThreadPool& pool, size_t bytes, int reps) {
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ReadBandwidthProbe> probe,
                          ReadBandwidthProbe::Create(pool, bytes));
  return probe->Measure(pool, reps);
}

}  // namespace slimlm::kernels
