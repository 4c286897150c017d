#include "slimlm/plan/pareto.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include <fmt/core.h>

namespace slimlm::plan {
namespace {

bool Dominates(const Measured& a, const Measured& b) {
  const bool no_worse = a.memory_bytes <= b.memory_bytes && a.tg >= b.tg &&
                        a.delta_ppl_percent <= b.delta_ppl_percent;
  const bool better =
      a.memory_bytes < b.memory_bytes || a.tg > b.tg || a.delta_ppl_percent < b.delta_ppl_percent;
  return no_worse && better;
}

bool Valid(const Measured& m) {
  return std::isfinite(m.memory_bytes) && std::isfinite(m.tg) && std::isfinite(m.delta_ppl_percent);
}

double Shortfall(const Measured& m, const Budget& b) {
  double s = 0;
  if (b.memory_bytes && m.memory_bytes > *b.memory_bytes) {
    s += m.memory_bytes / *b.memory_bytes - 1.0;
  }
  if (b.min_tg && m.tg < *b.min_tg) s += *b.min_tg / std::max(m.tg, 1e-9) - 1.0;
  if (b.max_delta_ppl_percent && m.delta_ppl_percent > *b.max_delta_ppl_percent) {
    const double scale = *b.max_delta_ppl_percent > 0 ? *b.max_delta_ppl_percent : 1.0;
    s += (m.delta_ppl_percent - *b.max_delta_ppl_percent) / scale;
  }
  return s;
}

}  // namespace

std::vector<bool> ParetoFront(const std::vector<Measured>& points) {
  std::vector<bool> front(points.size(), false);
  for (size_t i = 0; i < points.size(); ++i) {
    if (!Valid(points[i])) continue;
    front[i] = std::none_of(points.begin(), points.end(), [&](const Measured& other) {
      return Valid(other) && Dominates(other, points[i]);
    });
  }
  return front;
}

std::string Misses(const Measured& m, const Budget& b) {
  std::string out;
  auto add = [&](const std::string& what) { out += (out.empty() ? "" : "; ") + what; };
  if (!Valid(m)) return "not measured";
  if (b.memory_bytes && m.memory_bytes > *b.memory_bytes) {
    add(fmt::format("memory {:.2f} MiB > {:.2f} MiB", m.memory_bytes / (1 << 20),
                    *b.memory_bytes / (1 << 20)));
  }
  if (b.min_tg && m.tg < *b.min_tg) add(fmt::format("tg {:.1f} < {:.1f} t/s", m.tg, *b.min_tg));
  if (b.max_delta_ppl_percent && m.delta_ppl_percent > *b.max_delta_ppl_percent) {
    add(fmt::format("ΔPPL {:+.2f}% > {:.2f}%", m.delta_ppl_percent, *b.max_delta_ppl_percent));
  }
  return out;
}

std::optional<size_t> ChooseBest(const std::vector<Measured>& points, const Budget& budget) {
  std::optional<size_t> best;
  for (size_t i = 0; i < points.size(); ++i) {
    const Measured& m = points[i];
    if (!Valid(m) || !Misses(m, budget).empty()) continue;
    if (!best) {
      best = i;
      continue;
    }
    const Measured& b = points[*best];
    const auto key = [](const Measured& x) {
      return std::make_tuple(x.delta_ppl_percent, x.kld, x.memory_bytes);
    };
    if (key(m) < key(b)) best = i;
  }
  return best;
}

std::optional<size_t> Closest(const std::vector<Measured>& points, const Budget& budget) {
  std::optional<size_t> best;
  double best_shortfall = 0;
  for (size_t i = 0; i < points.size(); ++i) {
    if (!Valid(points[i])) continue;
    const double s = Shortfall(points[i], budget);
    if (!best || s < best_shortfall) {
      best = i;
      best_shortfall = s;
    }
  }
  return best;
}

}  // namespace slimlm::plan
