// Metrics in the Prometheus text exposition format: counters, gauges and histograms, grouped in
// families (one name, help text and type; one series per label set), rendered by a Registry.
//
// Cheap on the hot path: a series is registered once (a reference kept by the caller), and
// updating it is a few atomic operations, no lock and no allocation. Label values come from the
// program (model names, finish reasons), never from requests, so the number of series is bounded.
#ifndef SLIMLM_MONITOR_METRICS_H_
#define SLIMLM_MONITOR_METRICS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace slimlm::monitor {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Add(double v = 1.0) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Gauge {
 public:
  void Set(double v) { value_.store(v, std::memory_order_relaxed); }
  void Add(double v) { value_.fetch_add(v, std::memory_order_relaxed); }
  double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0.0};
};

class Histogram {
 public:
  // `bounds`: the buckets' upper bounds, increasing (+Inf is implied).
  explicit Histogram(std::vector<double> bounds);
  void Observe(double v);

  struct Snapshot {
    std::vector<double> bounds;
    std::vector<uint64_t> cumulative;  // Per bound, then +Inf (= count).
    double sum = 0;
    uint64_t count = 0;
  };
  Snapshot snapshot() const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // Per bucket, +Inf last.
  std::atomic<double> sum_{0.0};
};

// Bucket bounds: `count` bounds from `start`, each `factor` times the last.
std::vector<double> ExponentialBuckets(double start, double factor, int count);

class Registry {
 public:
  // The series of a family with these labels, created on first use (later calls with the same
  // name and labels return the same one). The name must be a valid metric name and a family
  // keeps one type; violations abort (programmer errors).
  Counter& GetCounter(const std::string& name, const std::string& help, const Labels& labels = {});
  Gauge& GetGauge(const std::string& name, const std::string& help, const Labels& labels = {});
  Histogram& GetHistogram(const std::string& name, const std::string& help,
                          const std::vector<double>& bounds, const Labels& labels = {});
  // Runs before each Render, to set gauges that are read rather than pushed (process memory...).
  void OnCollect(std::function<void()> fn);

  // The text exposition format (version 0.0.4): families in registration order.
  std::string Render() const;

 private:
  enum class Type { kCounter, kGauge, kHistogram };
  struct Series {
    Labels labels;
    std::unique_ptr<Counter> counter;
    std::unique_ptr<Gauge> gauge;
    std::unique_ptr<Histogram> histogram;
  };
  struct Family {
    std::string name, help;
    Type type;
    std::deque<Series> series;
  };
  Series& Find(const std::string& name, const std::string& help, Type type, const Labels& labels);

  mutable std::mutex mu_;
  std::deque<Family> families_;
  std::vector<std::function<void()>> collectors_;
};

// Escapes a label value (backslash, double quote, newline) for the exposition format.
std::string EscapeLabelValue(std::string_view v);

}  // namespace slimlm::monitor

#endif  // SLIMLM_MONITOR_METRICS_H_
