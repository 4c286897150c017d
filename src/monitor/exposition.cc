#include "slimlm/monitor/exposition.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

namespace slimlm::monitor {
namespace {

std::optional<double> ParseNumber(std::string_view text) {
  if (text == "+Inf" || text == "Inf") return HUGE_VAL;
  if (text == "-Inf") return -HUGE_VAL;
  if (text == "NaN") return std::nan("");
  const std::string copy(text);
  char* end = nullptr;
  const double v = std::strtod(copy.c_str(), &end);
  if (end == copy.c_str() || *end != '\0') return std::nullopt;
  return v;
}

// name{k="v",...} value [timestamp]
bool ParseLine(std::string_view line, Sample* s) {
  size_t i = 0;
  while (i < line.size() && line[i] != '{' && line[i] != ' ') ++i;
  s->name = std::string(line.substr(0, i));
  if (s->name.empty()) return false;
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (i < line.size() && line[i] != '}') {
      const size_t eq = line.find('=', i);
      if (eq == std::string_view::npos || eq + 1 >= line.size() || line[eq + 1] != '"') {
        return false;
      }
      std::string key(line.substr(i, eq - i));
      std::string value;
      size_t j = eq + 2;
      for (; j < line.size() && line[j] != '"'; ++j) {
        if (line[j] == '\\' && j + 1 < line.size()) {
          ++j;
          value += line[j] == 'n' ? '\n' : line[j];
        } else {
          value += line[j];
        }
      }
      if (j >= line.size()) return false;
      s->labels.emplace_back(std::move(key), std::move(value));
      i = j + 1;
      if (i < line.size() && line[i] == ',') ++i;
    }
    if (i >= line.size()) return false;
    ++i;  // '}'
  }
  while (i < line.size() && line[i] == ' ') ++i;
  const size_t end = line.find(' ', i);
  const std::optional<double> v = ParseNumber(line.substr(i, end - i));
  if (!v) return false;
  s->value = *v;
  return true;
}

bool Includes(const Labels& labels, const Labels& match) {
  return std::all_of(match.begin(), match.end(), [&](const auto& m) {
    return std::find(labels.begin(), labels.end(), m) != labels.end();
  });
}

}  // namespace

std::string Sample::Label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return v;
  }
  return "";
}

Result<std::vector<Sample>> ParseExposition(std::string_view text) {
  std::vector<Sample> out;
  size_t line_number = 0;
  for (size_t start = 0; start < text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(start, end - start);
    start = end + 1;
    ++line_number;
    if (line.empty() || line[0] == '#') continue;
    Sample s;
    if (!ParseLine(line, &s)) {
      return InvalidArgumentError("metrics line {} is not a sample: {}", line_number,
                                  std::string(line.substr(0, 80)));
    }
    out.push_back(std::move(s));
  }
  return out;
}

std::optional<double> SumOf(const std::vector<Sample>& samples, std::string_view name,
                            const Labels& match) {
  std::optional<double> sum;
  for (const Sample& s : samples) {
    if (s.name == name && Includes(s.labels, match)) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

Buckets BucketsOf(const std::vector<Sample>& samples, std::string_view histogram) {
  Buckets out;
  const std::string name = std::string(histogram) + "_bucket";
  for (const Sample& s : samples) {
    if (s.name != name) continue;
    const std::optional<double> le = ParseNumber(s.Label("le"));
    if (!le) continue;
    auto it = std::find_if(out.begin(), out.end(), [&](const auto& b) { return b.first == *le; });
    if (it == out.end()) {
      out.emplace_back(*le, s.value);
    } else {
      it->second += s.value;  // Series of several label sets add up.
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

Buckets Difference(const Buckets& now, const Buckets& before) {
  Buckets out = now;
  for (auto& [le, count] : out) {
    for (const auto& [le0, count0] : before) {
      if (le0 == le) count -= count0;
    }
  }
  return out;
}

std::optional<double> Quantile(const Buckets& b, double q) {
  if (b.empty() || b.back().second <= 0) return std::nullopt;
  const double rank = q * b.back().second;
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i].second < rank) continue;
    // Past the last finite bound: that bound is the best answer, as Prometheus gives.
    if (std::isinf(b[i].first)) return i > 0 ? b[i - 1].first : 0.0;
    const double lo = i > 0 ? b[i - 1].first : 0.0;
    const double below = i > 0 ? b[i - 1].second : 0.0;
    const double in = b[i].second - below;
    return in > 0 ? lo + (b[i].first - lo) * (rank - below) / in : b[i].first;
  }
  return b.back().first;
}

}  // namespace slimlm::monitor
