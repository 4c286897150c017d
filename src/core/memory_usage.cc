#include "slimlm/core/memory_usage.h"

#include <cstdio>
#include <cstring>

namespace slimlm {

MemoryUsage ReadMemoryUsage() {
  MemoryUsage usage;
  std::FILE* f = std::fopen("/proc/self/status", "r");
  if (f == nullptr) return usage;
  char line[256];
  while (std::fgets(line, sizeof(line), f) != nullptr) {
    long long kib = 0;
    // Lines read "VmRSS:	   12345 kB".
    if (std::sscanf(line, "VmRSS: %lld kB", &kib) == 1) usage.rss_bytes = kib * 1024;
    if (std::sscanf(line, "VmHWM: %lld kB", &kib) == 1) usage.peak_rss_bytes = kib * 1024;
  }
  std::fclose(f);
  return usage;
}

}  // namespace slimlm
