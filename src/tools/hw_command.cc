// slimlm hw: this machine and its measured limits (memory bandwidth, FMA and int8 peaks), the
// denominators of every speed figure.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "slimlm/core/progress.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/kernels/probe.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct HwArgs {
  int threads = 0;
  int64_t mib = 1024;
  kernels::LimitsOptions limits;
  bool quick = false;
  bool json = false;
  std::string json_file;
};

nlohmann::json StatsJson(const kernels::ProbeStats& s) {
  return {{"best", s.best}, {"median", s.median}, {"reps", s.reps}, {"threads", s.threads}};
}

nlohmann::json MachineJson(const kernels::MachineInfo& m) {
  nlohmann::json caches = nlohmann::json::array();
  for (const kernels::CacheInfo& c : m.caches) {
    caches.push_back(
        {{"level", c.level}, {"type", c.type}, {"bytes", c.bytes}, {"shared_by", c.shared_by}});
  }
  auto cache_bytes = [&](int level) -> size_t {
    const kernels::CacheInfo* c = m.DataCache(level);
    return c != nullptr ? c->bytes : 0;
  };
  return {{"cpu_model", m.cpu_model},
          {"physical_cores", m.physical_cores},
          {"logical_cpus", m.logical_cpus},
          {"features", m.features},
          {"l1d_bytes", cache_bytes(1)},
          {"l2_bytes", cache_bytes(2)},
          {"l3_bytes", cache_bytes(3)},
          {"caches", caches},
          {"memory_bytes", m.memory_bytes},
          {"memory_available_bytes", m.memory_available_bytes},
          {"kernel_isa", kernels::IsaName(kernels::Kernels().isa)}};
}

std::string CachesText(const kernels::MachineInfo& m) {
  std::string text;
  for (const kernels::CacheInfo& c : m.caches) {
    if (c.type == "Instruction") continue;
    if (!text.empty()) text += ", ";
    text += fmt::format("L{}{} {}", c.level, c.type == "Data" ? "d" : "",
                        FormatBytes(static_cast<double>(c.bytes)));
    if (c.shared_by > 1) text += fmt::format(" (shared by {} CPUs)", c.shared_by);
  }
  return text.empty() ? "unknown" : text;
}

void PrintText(const kernels::MachineInfo& m, const kernels::HardwareLimits& l) {
  fmt::print("cpu             {}\n", m.cpu_model);
  fmt::print("cores           {} physical, {} logical CPUs usable\n", m.physical_cores,
             m.logical_cpus);
  fmt::print("simd            {}\n", m.features);
  fmt::print("caches          {}\n", CachesText(m));
  fmt::print("memory          {} ({} available)\n",
             FormatBytes(static_cast<double>(m.memory_bytes)),
             FormatBytes(static_cast<double>(m.memory_available_bytes)));
  fmt::print("kernel path     {}\n\n", kernels::IsaName(kernels::Kernels().isa));
  const std::string all = fmt::format("{} thread{}", l.threads_all, l.threads_all == 1 ? "" : "s");
  fmt::print("measured: best (median) of {} bandwidth runs and {} compute runs\n",
             l.read_bw_1t.reps, l.fma_gflops_1t.reps);
  fmt::print("{:<24} {:>22} {:>22}\n", "", "1 thread", all);
  auto row = [](const char* name, const kernels::ProbeStats& one, const kernels::ProbeStats& many,
                const char* unit) {
    auto cell = [&](const kernels::ProbeStats& s) {
      return fmt::format("{:.1f} ({:.1f}) {}", s.best, s.median, unit);
    };
    fmt::print("{:<24} {:>22} {:>22}\n", name, cell(one), cell(many));
  };
  row(fmt::format("read bandwidth ({})", FormatBytes(static_cast<double>(l.bandwidth_bytes)))
          .c_str(),
      l.read_bw_1t, l.read_bw_all, "GB/s");
  row("fp32 fma", l.fma_gflops_1t, l.fma_gflops_all, "GFLOP/s");
  row("int8 dot product", l.int8_gops_1t, l.int8_gops_all, "GOP/s");
  fmt::print("\nmethods: read: {}; fma: {}; int8: {}\n", kernels::ReadBandwidthMethod(),
             kernels::FmaMethod(), kernels::Int8Method());
}

Status Hw(HwArgs args) {
  kernels::LimitsOptions& options = args.limits;
  if (args.quick) {
    args.mib = std::min<int64_t>(args.mib, 32);
    options.bandwidth_reps = std::min(options.bandwidth_reps, 2);
    options.compute_reps = std::min(options.compute_reps, 3);
    options.compute_seconds = std::min(options.compute_seconds, 0.002);
  }
  options.threads = args.threads;
  options.bandwidth_bytes = static_cast<size_t>(args.mib) << 20;
  const kernels::MachineInfo machine = kernels::DescribeMachine();
  Result<kernels::HardwareLimits> limits = [&] {
    Progress progress("hw: measuring", 6, "probes");
    return kernels::MeasureHardwareLimits(
        options, [&](int done, int, std::string_view) { progress.Update(done); });
  }();
  if (!limits.ok()) return limits.status();
  const kernels::HardwareLimits& l = *limits;
  if (!args.json) PrintText(machine, l);
  if (!args.json && args.json_file.empty()) return Status::Ok();
  nlohmann::json out = MachineJson(machine);
  out["threads_all"] = l.threads_all;
  out["quick"] = args.quick;
  out["bandwidth_bytes"] = l.bandwidth_bytes;
  out["read_bw_gbs_1t"] = StatsJson(l.read_bw_1t);
  out["read_bw_gbs_all"] = StatsJson(l.read_bw_all);
  out["fma_gflops_1t"] = StatsJson(l.fma_gflops_1t);
  out["fma_gflops_all"] = StatsJson(l.fma_gflops_all);
  out["int8_gops_1t"] = StatsJson(l.int8_gops_1t);
  out["int8_gops_all"] = StatsJson(l.int8_gops_all);
  out["methods"] = {{"read", kernels::ReadBandwidthMethod()},
                    {"fma", kernels::FmaMethod()},
                    {"int8", kernels::Int8Method()}};
  if (args.json) fmt::print("{}\n", out.dump(2));
  if (!args.json_file.empty()) return WriteFileAtomically(args.json_file, out.dump(2) + "\n");
  return Status::Ok();
}

}  // namespace

CommandSpec HwCommand() {
  return {"hw", "This machine: CPU, caches, memory, measured bandwidth and compute peaks",
          [](CLI::App* app) {
            auto args = std::make_shared<HwArgs>();
            app->add_option("-t,--threads", args->threads,
                            "Threads for the all-threads figures (0: every usable CPU)")
                ->check(CLI::Range(0, 1024));
            app->add_option("--mib", args->mib,
                            "MiB read by the bandwidth probe; far beyond the last-level cache")
                ->check(CLI::Range(int64_t{2}, int64_t{1} << 20))
                ->capture_default_str();
            app->add_option("-r,--reps", args->limits.bandwidth_reps,
                            "Reads of the whole bandwidth buffer per thread count")
                ->check(CLI::Range(1, 1000))
                ->capture_default_str();
            app->add_option("--compute-reps", args->limits.compute_reps,
                            "Repetitions of each compute probe; the best counts")
                ->check(CLI::Range(1, 100000))
                ->capture_default_str();
            app->add_option("--seconds", args->limits.compute_seconds,
                            "Seconds of one compute-probe repetition")
                ->check(CLI::Range(1e-4, 60.0))
                ->capture_default_str();
            app->add_flag("--quick", args->quick,
                          "Small buffer (32 MiB, may fit the cache) and short runs: for tests");
            app->add_flag("--json", args->json, "Print JSON");
            app->add_option("--json-file", args->json_file, "Also write the JSON to this file");
            return [args] { return Hw(*args); };
          }};
}

}  // namespace slimlm::tools
