// What the system says about this machine, and all probes together.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <sstream>
#include <thread>

#include "slimlm/core/cpu_features.h"
#include "slimlm/kernels/probe.h"

namespace slimlm::kernels {
namespace {

// The first line of a small text file, or "".
std::string ReadLine(const std::string& path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

// "32K", "1024K", "32M" -> bytes; 0 when unreadable.
size_t ParseSize(const std::string& text) {
  size_t value = 0;
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    value = value * 10 + static_cast<size_t>(text[i] - '0');
    ++i;
  }
  if (i < text.size() && (text[i] == 'K' || text[i] == 'k')) value <<= 10;
  if (i < text.size() && (text[i] == 'M' || text[i] == 'm')) value <<= 20;
  if (i < text.size() && (text[i] == 'G' || text[i] == 'g')) value <<= 30;
  return value;
}

// Counts the CPUs of a list such as "0-3,8,10-11".
int CountCpuList(const std::string& list) {
  int count = 0;
  std::stringstream in(list);
  std::string range;
  while (std::getline(in, range, ',')) {
    if (range.empty()) continue;
    const size_t dash = range.find('-');
    if (dash == std::string::npos) {
      ++count;
    } else {
      count += std::atoi(range.c_str() + dash + 1) - std::atoi(range.c_str()) + 1;
    }
  }
  return std::max(count, 1);
}

std::vector<CacheInfo> ReadCaches() {
  std::vector<CacheInfo> caches;
  for (int index = 0; index < 16; ++index) {
    const std::string dir = "/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(index);
    const std::string level = ReadLine(dir + "/level");
    if (level.empty()) break;
    CacheInfo c;
    c.level = std::atoi(level.c_str());
    c.type = ReadLine(dir + "/type");
    c.bytes = ParseSize(ReadLine(dir + "/size"));
    c.shared_by = CountCpuList(ReadLine(dir + "/shared_cpu_list"));
    caches.push_back(c);
  }
  return caches;
}

// A "MemAvailable:   123456 kB" style field of /proc/meminfo, in bytes; 0 when absent.
uint64_t MemInfoField(const std::string& name) {
  std::ifstream in("/proc/meminfo");
  std::string key;
  uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib) {
    std::getline(in, unit);
    if (key == name + ":") return kib * 1024;
  }
  return 0;
}

}  // namespace

const CacheInfo* MachineInfo::DataCache(int level) const {
  for (const CacheInfo& c : caches) {
    if (c.level == level && c.type != "Instruction") return &c;
  }
  return nullptr;
}

int UsableCpuCount() {
#if defined(__linux__)
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return std::max(1, CPU_COUNT(&set));
#endif
  return std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
}

MachineInfo DescribeMachine() {
  MachineInfo m;
  m.cpu_model = CpuModelName();
  m.physical_cores = PhysicalCoreCount();
  m.logical_cpus = UsableCpuCount();
  m.features = GetCpuFeatures().ToString();
  m.caches = ReadCaches();
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page_size = sysconf(_SC_PAGESIZE);
  if (pages > 0 && page_size > 0) {
    m.memory_bytes = static_cast<uint64_t>(pages) * static_cast<uint64_t>(page_size);
  }
  m.memory_available_bytes = MemInfoField("MemAvailable");
  return m;
}

Result<HardwareLimits> MeasureHardwareLimits(
    const LimitsOptions& options,
    FunctionRef<void(int done, int total, std::string_view)> on_step) {
  HardwareLimits limits;
  limits.threads_all = options.threads > 0 ? options.threads : UsableCpuCount();
  limits.bandwidth_bytes = options.bandwidth_bytes;
  ThreadPool one(1);
  ThreadPool all(limits.threads_all);
  constexpr int kSteps = 6;
  on_step(0, kSteps, "read bandwidth, 1 thread");
  // One buffer serves both thread counts; it is touched by all threads (NUMA placement).
  SLIMLM_ASSIGN_OR_RETURN(std::unique_ptr<ReadBandwidthProbe> buffer,
                          ReadBandwidthProbe::Create(all, options.bandwidth_bytes));
  limits.bandwidth_bytes = buffer->bytes();
  limits.read_bw_1t = buffer->Measure(one, options.bandwidth_reps);
  on_step(1, kSteps, "read bandwidth, all threads");
  limits.read_bw_all = buffer->Measure(all, options.bandwidth_reps);
  buffer.reset();
  on_step(2, kSteps, "fp32 fma, 1 thread");
  limits.fma_gflops_1t = MeasureFmaThroughput(one, options.compute_seconds, options.compute_reps);
  on_step(3, kSteps, "fp32 fma, all threads");
  limits.fma_gflops_all = MeasureFmaThroughput(all, options.compute_seconds, options.compute_reps);
  on_step(4, kSteps, "int8 dot, 1 thread");
  limits.int8_gops_1t = MeasureInt8Throughput(one, options.compute_seconds, options.compute_reps);
  on_step(5, kSteps, "int8 dot, all threads");
  limits.int8_gops_all = MeasureInt8Throughput(all, options.compute_seconds, options.compute_reps);
  on_step(kSteps, kSteps, "done");
  return limits;
}

}  // namespace slimlm::kernels
