// Choosing among measured candidates: the Pareto front over (memory, decode speed, quality) and
// the best candidate that meets a budget.
#ifndef SLIMLM_PLAN_PARETO_H_
#define SLIMLM_PLAN_PARETO_H_

#include <optional>
#include <string>
#include <vector>

namespace slimlm::plan {

// One measured candidate: less memory, more tokens/s and a lower perplexity increase are better.
struct Measured {
  double memory_bytes = 0;
  double tg = 0;
  double delta_ppl_percent = 0;
  double kld = 0;  // Tie-break on quality.
};

// Constraints; unset ones are not checked.
struct Budget {
  std::optional<double> memory_bytes;
  std::optional<double> min_tg;
  std::optional<double> max_delta_ppl_percent;
};

// front[i]: no other candidate is at least as good on all three figures and better on one.
std::vector<bool> ParetoFront(const std::vector<Measured>& points);

// The constraints `m` misses, e.g. "memory 12.1 MiB > 10.0 MiB; tg 80.2 < 100"; "" when none.
std::string Misses(const Measured& m, const Budget& budget);

// Among the candidates that meet every constraint, the one with the lowest perplexity increase
// (then the lowest KLD, then the least memory); nullopt when none meets them.
std::optional<size_t> ChooseBest(const std::vector<Measured>& points, const Budget& budget);

// The candidate that misses the budget by the least: the sum over missed constraints of the
// relative shortfall (memory and tg as ratios, ΔPPL in points over the limit divided by the limit
// or by 1 point when the limit is 0).
std::optional<size_t> Closest(const std::vector<Measured>& points, const Budget& budget);

}  // namespace slimlm::plan

#endif  // SLIMLM_PLAN_PARETO_H_
