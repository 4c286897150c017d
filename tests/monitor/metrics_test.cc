// The metric registry: exact exposition text (HELP, TYPE, label escaping, cumulative buckets,
// +Inf, _sum and _count), values under concurrent updates, and Prometheus's own parser
// (promtool check metrics) accepting what we render.
#include "slimlm/monitor/metrics.h"

#include <dlfcn.h>

#include <fstream>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "slimlm/monitor/exposition.h"
#include "slimlm/monitor/gpu_metrics.h"
#include "slimlm/monitor/process_metrics.h"
#include "support/server_process.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm::monitor {
namespace {

TEST(MetricsTest, RendersTheExpositionFormatExactly) {
  Registry r;
  r.GetCounter("jobs_total", "Jobs done.", {{"kind", "a\"b\\c\nd"}}).Add(3);
  r.GetCounter("jobs_total", "Jobs done.", {{"kind", "plain"}}).Add();
  r.GetGauge("queue_depth", "Queued\nnow.").Set(2.5);
  Histogram& h = r.GetHistogram("wait_seconds", "Wait.", {0.1, 1, 10});
  h.Observe(0.05);
  h.Observe(0.1);  // On a bound: counted in that bucket (le).
  h.Observe(5);
  h.Observe(100);
  EXPECT_EQ(r.Render(),
            "# HELP jobs_total Jobs done.\n"
            "# TYPE jobs_total counter\n"
            "jobs_total{kind=\"a\\\"b\\\\c\\nd\"} 3\n"
            "jobs_total{kind=\"plain\"} 1\n"
            "# HELP queue_depth Queued\\nnow.\n"
            "# TYPE queue_depth gauge\n"
            "queue_depth 2.5\n"
            "# HELP wait_seconds Wait.\n"
            "# TYPE wait_seconds histogram\n"
            "wait_seconds_bucket{le=\"0.1\"} 2\n"
            "wait_seconds_bucket{le=\"1\"} 2\n"
            "wait_seconds_bucket{le=\"10\"} 3\n"
            "wait_seconds_bucket{le=\"+Inf\"} 4\n"
            "wait_seconds_sum 105.15\n"
            "wait_seconds_count 4\n");
}

TEST(MetricsTest, TheSameNameAndLabelsAreTheSameSeries) {
  Registry r;
  Counter& a = r.GetCounter("x_total", "X.", {{"k", "1"}});
  Counter& b = r.GetCounter("x_total", "X.", {{"k", "1"}});
  Counter& c = r.GetCounter("x_total", "X.", {{"k", "2"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &c);
}

TEST(MetricsTest, ConcurrentUpdatesAreAllCounted) {
  Registry r;
  Counter& c = r.GetCounter("hits_total", "Hits.");
  Histogram& h = r.GetHistogram("size", "Size.", ExponentialBuckets(1, 2, 10));
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 100000; ++i) {
          c.Add();
          h.Observe(static_cast<double>(i % 7));
        }
      });
    }
  }
  EXPECT_EQ(c.value(), 400000);
  const Histogram::Snapshot s = h.snapshot();
  EXPECT_EQ(s.count, 400000u);
  EXPECT_EQ(s.sum, 4.0 * (100000 / 7 * 21 + (0 + 1 + 2 + 3 + 4)));  // 100000 = 14285*7 + 5
  EXPECT_EQ(s.cumulative[0], 4u * (14286 + 14286));                 // Values 0 and 1.
}

TEST(MetricsTest, ProcessMetricsAreRead) {
  Registry r;
  RegisterProcessMetrics(r);
  volatile double sink = 0;
  for (int i = 0; i < 20000000; ++i) sink = sink + i;  // Some CPU time.
  const std::string text = r.Render();
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
  EXPECT_GT(r.GetCounter("process_cpu_seconds_total", "").value(), 0.0);
  EXPECT_GT(r.GetGauge("process_resident_memory_bytes", "").value(), 1e6);
}

TEST(MetricsTest, GpuGaugesOnlyWithNvidiasLibrary) {
  Registry r;
  const int gpus = RegisterGpuMetrics(r);
  void* nvml = ::dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (nvml == nullptr) {
    EXPECT_EQ(gpus, 0);
    EXPECT_EQ(r.Render(), "");  // Absent, not zero.
    return;
  }
  ::dlclose(nvml);
  if (gpus == 0) GTEST_SKIP() << "NVML loads but reports no GPU";
  const std::string text = r.Render();
  EXPECT_THAT(text, ::testing::HasSubstr("slimlm_gpu_memory_total_bytes{gpu=\"0\"}"));
  EXPECT_GT(r.GetGauge("slimlm_gpu_memory_total_bytes", "", {{"gpu", "0"}}).value(), 0);
}

TEST(MetricsTest, PromtoolAcceptsTheExposition) {
  const std::string promtool = testing::FindProgram("promtool");
  ASSERT_FALSE(promtool.empty()) << "promtool is missing: scripts/install-deps installs prometheus";
  Registry r;
  RegisterProcessMetrics(r);
  r.GetCounter("slimlm_requests_total", "Requests.", {{"model_name", "m\"1"}}).Add(2);
  r.GetGauge("slimlm_ratio", "Ratio.").Set(0.25);
  Histogram& h = r.GetHistogram("slimlm_latency_seconds", "Latency.",
                                ExponentialBuckets(0.001, 2, 17), {{"model_name", "m"}});
  h.Observe(0.02);
  const std::string path = testing::MakeTempDir() + "/metrics.txt";
  std::ofstream(path) << r.Render();
  const testing::ProcessResult check =
      testing::RunProcess({"/bin/sh", "-c", promtool + " check metrics < " + path}, 60);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
  EXPECT_EQ(check.out + check.err, "") << "promtool found problems";
}

}  // namespace
}  // namespace slimlm::monitor

namespace slimlm::monitor {
namespace {

TEST(ExpositionTest, ParsesWhatTheRegistryRendersAndComputesQuantiles) {
  Registry r;
  r.GetCounter("c_total", "C.", {{"model_name", "a \"q\"\nb"}}).Add(7);
  Histogram& h = r.GetHistogram("lat_seconds", "Lat.", {1, 2, 4});
  for (double v : {0.5, 1.5, 1.5, 3.0}) h.Observe(v);
  Result<std::vector<Sample>> samples = ParseExposition(r.Render());
  ASSERT_TRUE(samples.ok()) << samples.status().ToString();
  EXPECT_EQ(SumOf(*samples, "c_total", {{"model_name", "a \"q\"\nb"}}), 7.0);
  EXPECT_EQ(SumOf(*samples, "lat_seconds_count"), 4.0);
  EXPECT_FALSE(SumOf(*samples, "missing").has_value());
  const Buckets b = BucketsOf(*samples, "lat_seconds");
  ASSERT_EQ(b.size(), 4u);  // 1, 2, 4, +Inf
  // Rank 2 of 4 falls in (1, 2], which holds observations 2 and 3: halfway, 1.5.
  EXPECT_DOUBLE_EQ(*Quantile(b, 0.5), 1.5);
  // Rank 3.96 falls in (2, 4], which holds only observation 4: 2 + 2 * 0.96.
  EXPECT_DOUBLE_EQ(*Quantile(b, 0.99), 3.92);
  EXPECT_FALSE(Quantile(Difference(b, b), 0.5).has_value());
  EXPECT_FALSE(ParseExposition("name{broken 1\n").ok());
}

}  // namespace
}  // namespace slimlm::monitor
