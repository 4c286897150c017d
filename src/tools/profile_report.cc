#include "tools/profile_report.h"

#include <algorithm>

#include <fmt/core.h>

#include "slimlm/core/thread_pool.h"
#include "slimlm/kernels/probe.h"

namespace slimlm::tools {

Result<ProfileLimits> MeasureProfileLimits(int threads) {
  ProfileLimits limits;
  limits.threads = threads;
  ThreadPool pool(threads);
  SLIMLM_ASSIGN_OR_RETURN(auto probe,
                          kernels::ReadBandwidthProbe::Create(pool, kernels::kQuickProbeBytes));
  limits.read_gbs = probe->Measure(pool, kernels::kQuickProbeReps).best;
  limits.fma_gflops = kernels::MeasureFmaThroughput(pool, 0.005, 10).best;
  limits.int8_gops = kernels::MeasureInt8Throughput(pool, 0.005, 10).best;
  return limits;
}

std::string FormatProfile(const std::string& title, const OpProfile& profile,
                          const ProfileLimits& limits) {
  const double total = profile.TotalSeconds();
  std::string out = fmt::format(
      "\n{} profile ({} threads; limits: read {:.1f} GB/s, fp32 {:.0f} GFLOP/s, int8 {:.0f} "
      "GOP/s)\n",
      title, limits.threads, limits.read_gbs, limits.fma_gflops, limits.int8_gops);
  out += fmt::format("{:<16} {:>7} {:>9} {:>6} {:>8} {:>8} {:>7} {:>7}\n", "operation", "calls",
                     "ms", "time%", "GB/s", "GOP/s", "of bw", "of peak");
  std::vector<OpStats> stats = profile.stats();
  std::sort(stats.begin(), stats.end(),
            [](const OpStats& a, const OpStats& b) { return a.seconds > b.seconds; });
  for (const OpStats& s : stats) {
    const double gbs = s.seconds > 0 ? s.bytes / s.seconds / 1e9 : 0.0;
    const double gops = s.seconds > 0 ? s.ops / s.seconds / 1e9 : 0.0;
    const bool int8 = s.name == "matmul q8_0" || s.name == "matmul q4_0" ||
                      s.name == "matmul q4_k" || s.name == "matmul q6_k";
    const double peak = int8 ? limits.int8_gops : limits.fma_gflops;
    out += fmt::format("{:<16} {:>7} {:>9.2f} {:>5.1f}% {:>8.1f} {:>8.1f} {:>6.0f}% {:>6.0f}%\n",
                       s.name, s.calls, s.seconds * 1e3, total > 0 ? 100 * s.seconds / total : 0,
                       gbs, gops, limits.read_gbs > 0 ? 100 * gbs / limits.read_gbs : 0,
                       peak > 0 ? 100 * gops / peak : 0);
  }
  out += fmt::format("{:<16} {:>7} {:>9.2f}\n", "total", "", total * 1e3);
  return out;
}

}  // namespace slimlm::tools
