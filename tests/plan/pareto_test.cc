// The Pareto front and the choice under a budget, on hand-made points whose answers are known.
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/plan/pareto.h"

namespace slimlm::plan {
namespace {

constexpr double kMiB = 1 << 20;

// memory (MiB), tg, ΔPPL %, KLD
std::vector<Measured> Points() {
  return {
      {20 * kMiB, 100, 0.0, 0.0},    // 0 source: best quality
      {12 * kMiB, 180, 0.1, 0.001},  // 1 q8_0-like
      {10 * kMiB, 170, 0.5, 0.004},  // 2
      {10 * kMiB, 160, 0.6, 0.005},  // 3 dominated by 2
      {8 * kMiB, 200, 2.5, 0.02},    // 4 smallest and fastest
      {15 * kMiB, 90, 12.0, 0.1},    // 5 dominated by 1
      {9 * kMiB, NAN, 1.0, 0.01},    // 6 not measured
  };
}

TEST(ParetoTest, Front) {
  const std::vector<bool> front = ParetoFront(Points());
  EXPECT_EQ(front, (std::vector<bool>{true, true, true, false, true, false, false}));
}

TEST(ParetoTest, EqualPointsAreBothOnTheFront) {
  const std::vector<Measured> same = {{1, 1, 1, 0}, {1, 1, 1, 0}};
  EXPECT_EQ(ParetoFront(same), (std::vector<bool>{true, true}));
}

TEST(ParetoTest, ChoosesTheBestQualityWithinBudget) {
  Budget b;
  b.memory_bytes = 11 * kMiB;
  EXPECT_EQ(ChooseBest(Points(), b), 2u);  // 1 is better but too large.
  b.min_tg = 175;
  EXPECT_EQ(ChooseBest(Points(), b), 4u);
  b.max_delta_ppl_percent = 2.0;
  EXPECT_EQ(ChooseBest(Points(), b), std::nullopt);
  EXPECT_EQ(Misses(Points()[4], b), "ΔPPL +2.50% > 2.00%");
  EXPECT_EQ(Misses(Points()[2], b), "tg 170.0 < 175.0 t/s");
  // The one missing by least: 2 misses tg by 3%, 4 misses ΔPPL by 25% of the limit.
  EXPECT_EQ(Closest(Points(), b), 2u);
  EXPECT_EQ(ChooseBest(Points(), Budget{}), 0u);  // No constraint: the best quality.
}

TEST(ParetoTest, TiesGoToLowerKldThenLessMemory) {
  const std::vector<Measured> points = {{10, 1, 0.5, 0.02}, {9, 1, 0.5, 0.01}, {8, 1, 0.5, 0.01}};
  EXPECT_EQ(ChooseBest(points, Budget{}), 2u);
}

TEST(ParetoTest, MissesListsEveryConstraint) {
  Budget b;
  b.memory_bytes = 1 * kMiB;
  b.min_tg = 1000;
  b.max_delta_ppl_percent = 0;
  EXPECT_EQ(Misses(Points()[1], b),
            "memory 12.00 MiB > 1.00 MiB; tg 180.0 < 1000.0 t/s; ΔPPL +0.10% > 0.00%");
  EXPECT_EQ(Misses(Points()[0], Budget{}), "");
  EXPECT_EQ(Misses(Points()[6], b), "not measured");
}

}  // namespace
}  // namespace slimlm::plan
