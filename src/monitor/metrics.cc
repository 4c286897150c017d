#include "slimlm/monitor/metrics.h"

#include <algorithm>
#include <cmath>

#include <fmt/core.h>

#include "slimlm/core/check.h"

namespace slimlm::monitor {
namespace {

bool ValidName(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
                    (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

// Prometheus's spelling of special values; the shortest round-trip form otherwise.
std::string Number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  return fmt::format("{}", v);
}

std::string EscapeHelp(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

// {a="x",b="y"} with `extra` (le="...") last; "" for no labels.
std::string LabelText(const Labels& labels, const std::string& extra = "") {
  if (labels.empty() && extra.empty()) return "";
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) out += ",";
    out += k + "=\"" + EscapeLabelValue(v) + "\"";
  }
  if (!extra.empty()) {
    if (out.size() > 1) out += ",";
    out += extra;
  }
  return out + "}";
}

}  // namespace

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)),
      counts_(std::make_unique<std::atomic<uint64_t>[]>(bounds_.size() + 1)) {
  SLIMLM_CHECK(std::is_sorted(bounds_.begin(), bounds_.end()) &&
               std::adjacent_find(bounds_.begin(), bounds_.end()) == bounds_.end())
      << "histogram bounds must increase";
}

void Histogram::Observe(double v) {
  // The first bucket whose bound is >= v (Prometheus's buckets are "less or equal").
  const size_t i =
      static_cast<size_t>(std::lower_bound(bounds_.begin(), bounds_.end(), v) - bounds_.begin());
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  sum_.fetch_add(v, std::memory_order_relaxed);
}

Histogram::Snapshot Histogram::snapshot() const {
  Snapshot s;
  s.bounds = bounds_;
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    total += counts_[i].load(std::memory_order_relaxed);
    s.cumulative.push_back(total);
  }
  s.count = total;
  s.sum = sum_.load(std::memory_order_relaxed);
  return s;
}

std::vector<double> ExponentialBuckets(double start, double factor, int count) {
  std::vector<double> out;
  double v = start;
  for (int i = 0; i < count; ++i, v *= factor) out.push_back(v);
  return out;
}

Registry::Series& Registry::Find(const std::string& name, const std::string& help, Type type,
                                 const Labels& labels) {
  SLIMLM_CHECK(ValidName(name)) << "bad metric name " << name;
  for (const auto& [k, v] : labels) {
    SLIMLM_CHECK(ValidName(k) && !k.starts_with("__") && k != "le") << "bad label name " << k;
  }
  auto family = std::find_if(families_.begin(), families_.end(),
                             [&](const Family& f) { return f.name == name; });
  if (family == families_.end()) {
    families_.push_back(Family{name, help, type, {}});
    family = std::prev(families_.end());
  }
  SLIMLM_CHECK(family->type == type) << name << " registered with another type";
  for (Series& s : family->series) {
    if (s.labels == labels) return s;
  }
  family->series.push_back(Series{labels, nullptr, nullptr, nullptr});
  return family->series.back();
}

Counter& Registry::GetCounter(const std::string& name, const std::string& help,
                              const Labels& labels) {
  std::lock_guard lock(mu_);
  Series& s = Find(name, help, Type::kCounter, labels);
  if (!s.counter) s.counter = std::make_unique<Counter>();
  return *s.counter;
}

Gauge& Registry::GetGauge(const std::string& name, const std::string& help, const Labels& labels) {
  std::lock_guard lock(mu_);
  Series& s = Find(name, help, Type::kGauge, labels);
  if (!s.gauge) s.gauge = std::make_unique<Gauge>();
  return *s.gauge;
}

Histogram& Registry::GetHistogram(const std::string& name, const std::string& help,
                                  const std::vector<double>& bounds, const Labels& labels) {
  std::lock_guard lock(mu_);
  Series& s = Find(name, help, Type::kHistogram, labels);
  if (!s.histogram) s.histogram = std::make_unique<Histogram>(bounds);
  return *s.histogram;
}

void Registry::OnCollect(std::function<void()> fn) {
  std::lock_guard lock(mu_);
  collectors_.push_back(std::move(fn));
}

std::string Registry::Render() const {
  std::vector<std::function<void()>> collectors;
  {
    std::lock_guard lock(mu_);
    collectors = collectors_;
  }
  for (const auto& fn : collectors) fn();  // Without the lock: they set gauges.
  std::lock_guard lock(mu_);
  std::string out;
  for (const Family& f : families_) {
    const char* type = f.type == Type::kCounter ? "counter"
                       : f.type == Type::kGauge ? "gauge"
                                                : "histogram";
    out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", f.name, EscapeHelp(f.help), f.name, type);
    for (const Series& s : f.series) {
      if (s.counter) {
        out += f.name + LabelText(s.labels) + " " + Number(s.counter->value()) + "\n";
      } else if (s.gauge) {
        out += f.name + LabelText(s.labels) + " " + Number(s.gauge->value()) + "\n";
      } else if (s.histogram) {
        const Histogram::Snapshot h = s.histogram->snapshot();
        for (size_t i = 0; i <= h.bounds.size(); ++i) {
          const std::string le =
              "le=\"" + (i < h.bounds.size() ? Number(h.bounds[i]) : std::string("+Inf")) + "\"";
          out += f.name + "_bucket" + LabelText(s.labels, le) + " " +
                 std::to_string(h.cumulative[i]) + "\n";
        }
        out += f.name + "_sum" + LabelText(s.labels) + " " + Number(h.sum) + "\n";
        out += f.name + "_count" + LabelText(s.labels) + " " + std::to_string(h.count) + "\n";
      }
    }
  }
  return out;
}

}  // namespace slimlm::monitor
