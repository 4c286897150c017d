// Reading the Prometheus text format back (for `slimlm top` and tests): samples with their
// labels, and quantiles from histogram buckets as Prometheus's histogram_quantile computes them.
#ifndef SLIMLM_MONITOR_EXPOSITION_H_
#define SLIMLM_MONITOR_EXPOSITION_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/monitor/metrics.h"

namespace slimlm::monitor {

struct Sample {
  std::string name;  // With its _bucket/_sum/_count suffix.
  Labels labels;
  double value = 0;
  // The value of a label; "" when absent.
  std::string Label(std::string_view key) const;
};

// Parses every sample line (comments skipped). kInvalidArgument names the first bad line.
Result<std::vector<Sample>> ParseExposition(std::string_view text);

// The sum of the samples named `name` whose labels include `match` (all of them for none).
// nullopt when there is none.
std::optional<double> SumOf(const std::vector<Sample>& samples, std::string_view name,
                            const Labels& match = {});

// A histogram's cumulative buckets (le, count), le increasing, +Inf last.
using Buckets = std::vector<std::pair<double, double>>;
Buckets BucketsOf(const std::vector<Sample>& samples, std::string_view histogram);
// `now` less `before`, bucket by bucket (the observations between two scrapes).
Buckets Difference(const Buckets& now, const Buckets& before);
// The q-quantile, interpolated linearly within its bucket; nullopt without observations.
std::optional<double> Quantile(const Buckets& buckets, double q);

}  // namespace slimlm::monitor

#endif  // SLIMLM_MONITOR_EXPOSITION_H_
