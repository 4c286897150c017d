// The process's own resources as metrics, read when scraped: process_cpu_seconds_total,
// process_resident_memory_bytes, process_start_time_seconds (the names Prometheus's client
// libraries use, so existing dashboards work).
#ifndef SLIMLM_MONITOR_PROCESS_METRICS_H_
#define SLIMLM_MONITOR_PROCESS_METRICS_H_

#include "slimlm/monitor/metrics.h"

namespace slimlm::monitor {

void RegisterProcessMetrics(Registry& registry);

// CPU seconds (user and system) this process has used; 0 when unknown.
double ProcessCpuSeconds();

}  // namespace slimlm::monitor

#endif  // SLIMLM_MONITOR_PROCESS_METRICS_H_
