// The hardware probes return positive, finite, self-consistent figures on any machine. The
// figures themselves depend on the machine and its load, so only their form is checked here.
#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/probe/probe_internal.h"
#include "slimlm/kernels/probe.h"

namespace slimlm::kernels {
namespace {

void ExpectSane(const ProbeStats& s, int reps, int threads) {
  EXPECT_TRUE(std::isfinite(s.best));
  EXPECT_GT(s.best, 0.0);
  EXPECT_GT(s.median, 0.0);
  EXPECT_LE(s.median, s.best);
  EXPECT_EQ(s.reps, reps);
  EXPECT_EQ(s.threads, threads);
}

TEST(Probe, SummarizeRatesGivesBestAndMedian) {
  ProbeStats odd = SummarizeRates({3.0, 1.0, 2.0}, 4);
  EXPECT_EQ(odd.best, 3.0);
  EXPECT_EQ(odd.median, 2.0);
  EXPECT_EQ(odd.reps, 3);
  EXPECT_EQ(odd.threads, 4);
  ProbeStats even = SummarizeRates({4.0, 1.0, 2.0, 3.0}, 1);
  EXPECT_EQ(even.best, 4.0);
  EXPECT_EQ(even.median, 2.5);
}

TEST(Probe, ReadBandwidthIsPositiveAtOneAndTwoThreads) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    Result<ProbeStats> stats = MeasureReadBandwidth(pool, size_t{8} << 20, 2);
    ASSERT_TRUE(stats.ok()) << stats.status().message();
    ExpectSane(*stats, 2, threads);
    EXPECT_LT(stats->best, 1e5) << "GB/s";
  }
}

TEST(Probe, OneBufferServesPoolsOfEverySize) {
  ThreadPool two(2);
  Result<std::unique_ptr<ReadBandwidthProbe>> probe = ReadBandwidthProbe::Create(two, 1 << 20);
  ASSERT_TRUE(probe.ok()) << probe.status().message();
  EXPECT_EQ((*probe)->bytes(), size_t{2} << 20) << "rounded up to one 2 MiB page";
  for (int threads : {1, 3, 5}) {
    ThreadPool pool(threads);
    ExpectSane((*probe)->Measure(pool, 1), 1, threads);
  }
}

TEST(Probe, ComputePeaksArePositive) {
  for (int threads : {1, 2}) {
    ThreadPool pool(threads);
    ExpectSane(MeasureFmaThroughput(pool, 0.002, 2), 2, threads);
    ExpectSane(MeasureInt8Throughput(pool, 0.002, 2), 2, threads);
  }
  EXPECT_FALSE(ReadBandwidthMethod().empty());
  EXPECT_FALSE(FmaMethod().empty());
  EXPECT_FALSE(Int8Method().empty());
}

// Every read kernel this CPU runs reads every byte: the OR of a buffer with one marked byte
// shows the mark, wherever it is.
TEST(Probe, EveryReadKernelReadsEveryByte) {
  constexpr size_t kBytes = 64 * probe::kReadStep;
  alignas(64) static uint8_t buffer[kBytes];
  for (const probe::ReadKernel& kernel : probe::ReadKernels()) {
    for (size_t at : {size_t{0}, size_t{37}, kBytes / 2 + 5, kBytes - 1}) {
      std::fill(buffer, buffer + kBytes, uint8_t{0});
      buffer[at] = 0x5a;
      const uint64_t expected = uint64_t{0x5a} << (8 * (at % 8));
      EXPECT_EQ(kernel.run(buffer, kBytes), expected) << kernel.name << " at " << at;
    }
  }
}

// Every compute kernel this CPU runs, not only the one the probes pick.
TEST(Probe, EveryComputeKernelGivesAPositiveRate) {
  ThreadPool pool(1);
  for (const auto& kernels : {probe::FmaKernels(), probe::Int8Kernels()}) {
    ASSERT_FALSE(kernels.empty());
    for (const probe::ComputeKernel& kernel : kernels) {
      ExpectSane(probe::MeasureCompute(kernel, pool, 0.002, 1), 1, 1);
      EXPECT_GT(kernel.ops_per_iter, 0) << kernel.name;
    }
  }
}

TEST(Probe, MeasureHardwareLimitsReportsEveryStep) {
  LimitsOptions options;
  options.threads = 2;
  options.bandwidth_bytes = size_t{4} << 20;
  options.bandwidth_reps = 1;
  options.compute_reps = 1;
  options.compute_seconds = 0.002;
  std::vector<int> steps;
  Result<HardwareLimits> limits =
      MeasureHardwareLimits(options, [&](int done, int total, std::string_view name) {
        EXPECT_EQ(total, 6);
        EXPECT_FALSE(name.empty());
        steps.push_back(done);
      });
  ASSERT_TRUE(limits.ok()) << limits.status().message();
  EXPECT_EQ(steps, (std::vector<int>{0, 1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(limits->threads_all, 2);
  EXPECT_EQ(limits->bandwidth_bytes, size_t{4} << 20);
  ExpectSane(limits->read_bw_1t, 1, 1);
  ExpectSane(limits->read_bw_all, 1, 2);
  ExpectSane(limits->fma_gflops_1t, 1, 1);
  ExpectSane(limits->fma_gflops_all, 1, 2);
  ExpectSane(limits->int8_gops_1t, 1, 1);
  ExpectSane(limits->int8_gops_all, 1, 2);
}

TEST(Probe, DescribeMachineFillsTheBasics) {
  MachineInfo m = DescribeMachine();
  EXPECT_FALSE(m.cpu_model.empty());
  EXPECT_GE(m.physical_cores, 1);
  EXPECT_GE(m.logical_cpus, 1);
  EXPECT_EQ(m.logical_cpus, UsableCpuCount());
  EXPECT_GT(m.memory_bytes, uint64_t{0});
  for (const CacheInfo& c : m.caches) {
    EXPECT_GE(c.level, 1);
    EXPECT_GE(c.shared_by, 1);
  }
  if (!m.caches.empty()) {
    ASSERT_NE(m.DataCache(1), nullptr);
    EXPECT_NE(m.DataCache(1)->type, "Instruction");
    EXPECT_GT(m.DataCache(1)->bytes, size_t{0});
  }
}

}  // namespace
}  // namespace slimlm::kernels
