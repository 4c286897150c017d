#include "slimlm/monitor/gpu_metrics.h"

#include <dlfcn.h>

#include <string>
#include <type_traits>

namespace slimlm::monitor {
namespace {

// The few NVML declarations used, as its C API defines them (nvml.h is not a build dependency).
using NvmlReturn = int;  // 0: NVML_SUCCESS
using NvmlDevice = void*;
struct NvmlUtilization {
  unsigned int gpu;  // Percent of time a kernel ran, over the last sample period.
  unsigned int memory;
};
struct NvmlMemory {
  unsigned long long total, free, used;  // NOLINT(runtime/int): NVML's types.
};

struct Nvml {
  NvmlReturn (*init)() = nullptr;
  NvmlReturn (*device_count)(unsigned int*) = nullptr;
  NvmlReturn (*device_by_index)(unsigned int, NvmlDevice*) = nullptr;
  NvmlReturn (*utilization)(NvmlDevice, NvmlUtilization*) = nullptr;
  NvmlReturn (*memory)(NvmlDevice, NvmlMemory*) = nullptr;
  NvmlReturn (*power)(NvmlDevice, unsigned int*) = nullptr;  // Milliwatts.
};

// Loads NVML once; nullptr when absent or incomplete. Kept loaded for the process's life.
const Nvml* LoadNvml() {
  static const Nvml* nvml = []() -> const Nvml* {
    void* lib = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return nullptr;
    static Nvml n;
    auto get = [&](auto* fn, const char* name) {
      *fn = reinterpret_cast<std::remove_pointer_t<decltype(fn)>>(::dlsym(lib, name));
      return *fn != nullptr;
    };
    const bool ok = get(&n.init, "nvmlInit_v2") && get(&n.device_count, "nvmlDeviceGetCount_v2") &&
                    get(&n.device_by_index, "nvmlDeviceGetHandleByIndex_v2") &&
                    get(&n.utilization, "nvmlDeviceGetUtilizationRates") &&
                    get(&n.memory, "nvmlDeviceGetMemoryInfo") &&
                    get(&n.power, "nvmlDeviceGetPowerUsage");
    if (!ok || n.init() != 0) return nullptr;
    return &n;
  }();
  return nvml;
}

}  // namespace

int RegisterGpuMetrics(Registry& registry) {
  const Nvml* nvml = LoadNvml();
  unsigned int count = 0;
  if (nvml == nullptr || nvml->device_count(&count) != 0 || count == 0) return 0;
  for (unsigned int i = 0; i < count; ++i) {
    NvmlDevice device = nullptr;
    if (nvml->device_by_index(i, &device) != 0) continue;
    const Labels labels = {{"gpu", std::to_string(i)}};
    Gauge& util = registry.GetGauge("slimlm_gpu_utilization_ratio",
                                    "Fraction of time the GPU ran kernels (NVML).", labels);
    Gauge& used = registry.GetGauge("slimlm_gpu_memory_used_bytes", "GPU memory in use.", labels);
    Gauge& total = registry.GetGauge("slimlm_gpu_memory_total_bytes", "GPU memory.", labels);
    Gauge& power = registry.GetGauge("slimlm_gpu_power_watts", "GPU power draw.", labels);
    registry.OnCollect([nvml, device, &util, &used, &total, &power] {
      NvmlUtilization u{};
      if (nvml->utilization(device, &u) == 0) util.Set(u.gpu / 100.0);
      NvmlMemory m{};
      if (nvml->memory(device, &m) == 0) {
        used.Set(static_cast<double>(m.used));
        total.Set(static_cast<double>(m.total));
      }
      unsigned int milliwatts = 0;
      if (nvml->power(device, &milliwatts) == 0) power.Set(milliwatts / 1000.0);
    });
  }
  return static_cast<int>(count);
}

}  // namespace slimlm::monitor
