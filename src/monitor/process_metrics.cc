#include "slimlm/monitor/process_metrics.h"

#include <sys/resource.h>

#include <chrono>

#include "slimlm/core/memory_usage.h"

namespace slimlm::monitor {

double ProcessCpuSeconds() {
  rusage u{};
  if (getrusage(RUSAGE_SELF, &u) != 0) return 0;
  auto seconds = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return seconds(u.ru_utime) + seconds(u.ru_stime);
}

void RegisterProcessMetrics(Registry& registry) {
  Counter& cpu = registry.GetCounter("process_cpu_seconds_total",
                                     "Total user and system CPU time spent in seconds.");
  Gauge& rss = registry.GetGauge("process_resident_memory_bytes", "Resident memory size in bytes.");
  Gauge& start = registry.GetGauge("process_start_time_seconds",
                                   "Start time of the process since unix epoch in seconds.");
  start.Set(
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  registry.OnCollect([&cpu, &rss] {
    // A counter only goes up: it is moved to the current reading.
    const double now = ProcessCpuSeconds();
    if (now > cpu.value()) cpu.Add(now - cpu.value());
    rss.Set(static_cast<double>(ReadMemoryUsage().rss_bytes));
  });
}

}  // namespace slimlm::monitor
