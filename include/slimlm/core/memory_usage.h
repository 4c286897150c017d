// How much memory this process holds resident, as the kernel counts it.
#ifndef SLIMLM_CORE_MEMORY_USAGE_H_
#define SLIMLM_CORE_MEMORY_USAGE_H_

#include <cstdint>

namespace slimlm {

struct MemoryUsage {
  // Resident set now (VmRSS), and its peak since the process started (VmHWM), in bytes. Both
  // count memory-mapped file pages that have been read, not only allocations. 0: unknown (no
  // /proc on this system).
  int64_t rss_bytes = 0;
  int64_t peak_rss_bytes = 0;
};

// Reads /proc/self/status. Never fails: unknown figures stay 0.
MemoryUsage ReadMemoryUsage();

}  // namespace slimlm

#endif  // SLIMLM_CORE_MEMORY_USAGE_H_
