#include "slimlm/plan/machine.h"

#include <cstdio>
#include <exception>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "slimlm/core/memory_usage.h"
#include "slimlm/kernels/probe.h"

namespace slimlm::plan {
namespace {

uint64_t LastLevelCache() {
  const kernels::MachineInfo m = kernels::DescribeMachine();
  for (int level = 3; level >= 1; --level) {
    if (const kernels::CacheInfo* c = m.DataCache(level)) return c->bytes;
  }
  return 0;
}

// Rss of the mapping that holds `address`, from /proc/self/smaps; -1 when unknown.
int64_t MappingResidentBytes(uintptr_t address) {
  std::ifstream smaps("/proc/self/smaps");
  std::string line;
  bool inside = false;
  while (std::getline(smaps, line)) {
    unsigned long begin = 0, end = 0;  // NOLINT(runtime/int): sscanf's %lx.
    if (std::sscanf(line.c_str(), "%lx-%lx ", &begin, &end) == 2 && line.find(' ') != 0) {
      inside = address >= begin && address < end;
      continue;
    }
    long kib = 0;  // NOLINT(runtime/int)
    if (inside && std::sscanf(line.c_str(), "Rss: %ld kB", &kib) == 1) return int64_t{kib} << 10;
  }
  return -1;
}

}  // namespace

void MeasureFaultWindow(const WeightStore& store, MachineLimits* machine) {
  constexpr int kTouches = 4;
  const StoredTensor* embd = store.Find("token_embd.weight");
  if (embd == nullptr || embd->nbytes < (size_t{1} << 20)) return;
  const void* data = embd->data;
  const size_t bytes = embd->nbytes;
  const auto base = reinterpret_cast<uintptr_t>(data);
  const int64_t before = MappingResidentBytes(base);
  if (before < 0) return;
  for (int i = 0; i < kTouches; ++i) {
    const size_t offset = bytes / kTouches * static_cast<size_t>(i) + bytes / (2 * kTouches);
    (void)*static_cast<const volatile uint8_t*>(static_cast<const uint8_t*>(data) + offset);
  }
  const int64_t after = MappingResidentBytes(base);
  if (after > before) machine->fault_window_bytes = static_cast<double>(after - before) / kTouches;
}

uint64_t RuntimeResidentBytes() {
  return static_cast<uint64_t>(std::max<int64_t>(0, ReadMemoryUsage().rss_bytes));
}

Result<MachineLimits> MeasureMachine(int threads) {
  if (threads < 1) return InvalidArgumentError("thread count {} must be at least 1", threads);
  kernels::LimitsOptions options;
  options.threads = threads;
  options.bandwidth_bytes = size_t{256} << 20;
  options.bandwidth_reps = 3;
  options.compute_reps = 8;
  options.compute_seconds = 0.002;
  SLIMLM_ASSIGN_OR_RETURN(
      kernels::HardwareLimits l,
      kernels::MeasureHardwareLimits(options, [](int, int, std::string_view) {}));
  MachineLimits m;
  m.threads = threads;
  const bool one = threads == 1;
  m.bandwidth_gbs = one ? l.read_bw_1t.best : l.read_bw_all.best;
  m.fma_gflops = one ? l.fma_gflops_1t.best : l.fma_gflops_all.best;
  m.int8_gops = one ? l.int8_gops_1t.best : l.int8_gops_all.best;
  m.llc_bytes = LastLevelCache();
  m.source = "quick probes";
  return m;
}

Result<MachineLimits> MachineFromHwJson(const std::string& path, int threads) {
  if (threads < 1) return InvalidArgumentError("thread count {} must be at least 1", threads);
  SLIMLM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path));
  MachineLimits m;
  m.threads = threads;
  m.source = path;
  try {
    const nlohmann::json j = nlohmann::json::parse(text);
    const bool one = threads == 1;
    if (!one && j.at("threads_all").get<int>() != threads) {
      return InvalidArgumentError(
          "{}: measured with {} threads, not {}: run `slimlm hw -t {} --json-file {}`", path,
          j.at("threads_all").get<int>(), threads, threads, path);
    }
    const char* suffix = one ? "_1t" : "_all";
    m.bandwidth_gbs = j.at(std::string("read_bw_gbs") + suffix).at("best").get<double>();
    m.fma_gflops = j.at(std::string("fma_gflops") + suffix).at("best").get<double>();
    m.int8_gops = j.at(std::string("int8_gops") + suffix).at("best").get<double>();
    m.llc_bytes = j.value("l3_bytes", uint64_t{0});
    if (m.llc_bytes == 0) m.llc_bytes = j.value("l2_bytes", uint64_t{0});
  } catch (const std::exception& e) {
    return InvalidArgumentError("{}: not the JSON of `slimlm hw --json`: {}", path, e.what());
  }
  if (!(m.bandwidth_gbs > 0) || !(m.fma_gflops > 0) || !(m.int8_gops > 0)) {
    return InvalidArgumentError("{}: a measured limit is missing or not positive", path);
  }
  return m;
}

}  // namespace slimlm::plan
