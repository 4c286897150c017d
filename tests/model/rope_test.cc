// RoPE frequencies under each scaling method, against the methods' formulas.
#include "model/rope.h"

#include <cmath>
#include <numbers>
#include <vector>

#include <gtest/gtest.h>

namespace slimlm {
namespace {

ModelConfig BaseConfig() {
  ModelConfig c;
  c.head_dim = 64;
  c.rope_dim = 64;
  c.rope_theta = 500000.0f;
  c.context_length = 8192;
  return c;
}

// Angle of pair i at position pos, recovered from cos and sin.
std::vector<double> Angles(const RopeAngles& rope, int64_t pos, double magnitude = 1.0) {
  std::vector<float> cos(static_cast<size_t>(rope.n_pairs())), sin(cos.size());
  rope.Compute(pos, cos.data(), sin.data());
  std::vector<double> a;
  for (size_t i = 0; i < cos.size(); ++i) {
    EXPECT_NEAR(std::hypot(cos[i], sin[i]), magnitude, 1e-6);
    a.push_back(std::atan2(sin[i], cos[i]));
  }
  return a;
}

double Wrap(double x) { return std::remainder(x, 2 * std::numbers::pi); }

double BaseFreq(const ModelConfig& c, int i) {
  return std::pow(static_cast<double>(c.rope_theta), -2.0 * i / static_cast<double>(c.rope_dim));
}

TEST(Rope, UnscaledAnglesArePositionTimesFrequency) {
  ModelConfig c = BaseConfig();
  RopeAngles rope(c, nullptr);
  auto a = Angles(rope, 3);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(Wrap(a[i] - 3 * BaseFreq(c, i)), 0.0, 1e-6) << i;
}

TEST(Rope, LinearScalingDividesPositions) {
  ModelConfig c = BaseConfig();
  c.rope_scaling.type = RopeScalingType::kLinear;
  c.rope_scaling.factor = 4.0f;
  auto scaled = Angles(RopeAngles(c, nullptr), 40);
  ModelConfig plain = BaseConfig();
  auto reference = Angles(RopeAngles(plain, nullptr), 10);
  for (int i = 0; i < 32; ++i) EXPECT_NEAR(Wrap(scaled[i] - reference[i]), 0.0, 1e-5) << i;
}

TEST(Rope, Llama3KeepsHighFrequenciesAndScalesLowOnes) {
  ModelConfig c = BaseConfig();
  RopeScaling& s = c.rope_scaling;
  s.type = RopeScalingType::kLlama3;
  s.factor = 8.0f;
  s.low_freq_factor = 1.0f;
  s.high_freq_factor = 4.0f;
  s.original_context = 8192;
  auto a = Angles(RopeAngles(c, nullptr), 1);
  int kept = 0, scaled = 0, smoothed = 0;
  for (int i = 0; i < 32; ++i) {
    double f = BaseFreq(c, i);
    double wavelength = 2 * std::numbers::pi / f;
    double expected;
    if (wavelength < 8192.0 / 4.0) {
      expected = f;
      ++kept;
    } else if (wavelength > 8192.0 / 1.0) {
      expected = f / 8.0;
      ++scaled;
    } else {
      double smooth = (8192.0 / wavelength - 1.0) / (4.0 - 1.0);
      expected = (1 - smooth) * f / 8.0 + smooth * f;
      ++smoothed;
    }
    EXPECT_NEAR(Wrap(a[i] - expected), 0.0, 1e-6) << i;
  }
  EXPECT_GT(kept, 0);
  EXPECT_GT(scaled, 0);
  EXPECT_GT(smoothed, 0);
}

TEST(Rope, YarnInterpolatesLowFrequenciesAndScalesMagnitude) {
  ModelConfig c = BaseConfig();
  c.rope_theta = 10000.0f;
  RopeScaling& s = c.rope_scaling;
  s.type = RopeScalingType::kYarn;
  s.factor = 4.0f;
  s.original_context = 4096;
  const double magnitude = 1.0 + 0.1 * std::log(4.0);
  auto a = Angles(RopeAngles(c, nullptr), 1, magnitude);
  // The first pairs (fast rotations) are kept, the last (slow) are divided by the factor.
  EXPECT_NEAR(a[0], BaseFreq(c, 0), 1e-6);
  EXPECT_NEAR(a[31], BaseFreq(c, 31) / 4.0, 1e-9);
}

TEST(Rope, FrequencyFactorsDivideEachPair) {
  ModelConfig c = BaseConfig();
  std::vector<float> factors(32, 1.0f);
  factors[5] = 2.0f;
  auto a = Angles(RopeAngles(c, factors.data()), 1);
  EXPECT_NEAR(a[5], BaseFreq(c, 5) / 2.0, 1e-7);
  EXPECT_NEAR(a[6], BaseFreq(c, 6), 1e-7);
}

}  // namespace
}  // namespace slimlm
