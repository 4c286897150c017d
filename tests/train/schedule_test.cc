// The learning-rate schedule: linear warm-up to the peak, cosine decay to the floor.
#include "slimlm/train/schedule.h"

#include <cmath>
#include <numbers>

#include <gtest/gtest.h>

namespace slimlm::train {
namespace {

TEST(Schedule, WarmsUpLinearlyThenDecaysByCosineToTheFloor) {
  Schedule s{.peak = 1e-3, .floor = 1e-4, .warmup_steps = 10, .total_steps = 110};
  EXPECT_DOUBLE_EQ(s.At(0), 1e-4);
  EXPECT_DOUBLE_EQ(s.At(4), 5e-4);
  EXPECT_DOUBLE_EQ(s.At(9), 1e-3);
  EXPECT_DOUBLE_EQ(s.At(10), 1e-3);
  // Halfway through the decay the cosine term is 1/2 of the range.
  EXPECT_NEAR(s.At(60), 1e-4 + 0.5 * 9e-4, 1e-15);
  EXPECT_NEAR(s.At(35), 1e-4 + 0.5 * 9e-4 * (1 + std::cos(std::numbers::pi / 4)), 1e-15);
  EXPECT_DOUBLE_EQ(s.At(110), 1e-4);
  EXPECT_DOUBLE_EQ(s.At(500), 1e-4);
}

}  // namespace
}  // namespace slimlm::train
