// GPU gauges from NVIDIA's management library (NVML), found at run time: when
// libnvidia-ml.so.1 loads and reports devices, slimlm_gpu_utilization_ratio,
// slimlm_gpu_memory_used_bytes, slimlm_gpu_memory_total_bytes and slimlm_gpu_power_watts (label
// gpu: the index) are read at each scrape. No build dependency; absent on machines without it.
#ifndef SLIMLM_MONITOR_GPU_METRICS_H_
#define SLIMLM_MONITOR_GPU_METRICS_H_

#include "slimlm/monitor/metrics.h"

namespace slimlm::monitor {

// The number of GPUs whose gauges were registered (0: no NVML or no device; nothing added).
int RegisterGpuMetrics(Registry& registry);

}  // namespace slimlm::monitor

#endif  // SLIMLM_MONITOR_GPU_METRICS_H_
