#include "slimlm/model/sampler.h"

#include <cmath>
#include <limits>
#include <vector>

#include <gtest/gtest.h>

namespace slimlm {
namespace {

std::vector<float> LogProbs(std::vector<double> p) {
  std::vector<float> l;
  for (double v : p) l.push_back(static_cast<float>(std::log(v)));
  return l;
}

SamplingParams Plain(float temperature, uint64_t seed = 1) {
  SamplingParams p;
  p.temperature = temperature;
  p.top_k = 0;
  p.top_p = 1.0f;
  p.min_p = 0.0f;
  p.seed = seed;
  return p;
}

std::vector<int> Histogram(SamplingParams params, const std::vector<float>& logits, int draws) {
  Sampler s(params, static_cast<int64_t>(logits.size()));
  std::vector<int> counts(logits.size());
  for (int i = 0; i < draws; ++i) ++counts[static_cast<size_t>(s.Sample(logits))];
  return counts;
}

TEST(Sampler, GreedyTakesTheFirstLargestLogit) {
  Sampler s(Plain(0.0f), 4);
  EXPECT_EQ(s.Sample(std::vector<float>{0.1f, 3.0f, 3.0f, -1.0f}), 1);
  EXPECT_EQ(Sampler::Argmax(std::vector<float>{-5.0f, -6.0f}), 0);
  // NaN never wins, wherever it is; the largest comes last.
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(Sampler::Argmax(std::vector<float>{1.0f, nan, 0.5f, 2.0f}), 3);
  EXPECT_EQ(Sampler::Argmax(std::vector<float>{-1.0f, -0.5f, nan}), 1);
  EXPECT_EQ(Sampler::Argmax(std::vector<float>{nan, -3.0f, -2.0f}), 2);
  EXPECT_EQ(Sampler::Argmax(std::vector<float>{nan, nan}), 0);
}

// At temperature 1 with every filter off, frequencies follow the softmax: each count is within
// 4 standard deviations of draws * p (binomial).
TEST(Sampler, DrawsFollowTheDistribution) {
  const std::vector<double> p = {0.5, 0.3, 0.2};
  const int draws = 20000;
  auto counts = Histogram(Plain(1.0f), LogProbs(p), draws);
  for (size_t i = 0; i < p.size(); ++i) {
    double sigma = std::sqrt(draws * p[i] * (1 - p[i]));
    EXPECT_NEAR(counts[i], draws * p[i], 4 * sigma) << i;
  }
}

TEST(Sampler, TemperatureSharpensTheDistribution) {
  // At temperature 0.5 probabilities become p^2 / sum: 0.25/0.38, 0.09/0.38, 0.04/0.38.
  auto counts = Histogram(Plain(0.5f), LogProbs({0.5, 0.3, 0.2}), 20000);
  EXPECT_NEAR(counts[0] / 20000.0, 0.25 / 0.38, 0.02);
  EXPECT_NEAR(counts[2] / 20000.0, 0.04 / 0.38, 0.01);
}

TEST(Sampler, TopKTopPAndMinPCutTheTail) {
  const std::vector<float> logits = LogProbs({0.5, 0.3, 0.15, 0.05});
  SamplingParams k = Plain(1.0f);
  k.top_k = 2;
  auto counts = Histogram(k, logits, 3000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  SamplingParams p = Plain(1.0f);
  p.top_p = 0.79f;  // 0.5 + 0.3 reaches it: two tokens stay.
  counts = Histogram(p, logits, 3000);
  EXPECT_EQ(counts[2] + counts[3], 0);
  EXPECT_GT(counts[1], 0);
  SamplingParams m = Plain(1.0f);
  m.min_p = 0.25f;  // Keeps p >= 0.125: three tokens.
  counts = Histogram(m, logits, 3000);
  EXPECT_EQ(counts[3], 0);
  EXPECT_GT(counts[2], 0);
}

TEST(Sampler, SeedReproducesAndDifferentSeedsDiffer) {
  const std::vector<float> logits(50, 0.0f);
  auto run = [&](uint64_t seed) {
    Sampler s(Plain(1.0f, seed), 50);
    std::vector<int32_t> out;
    for (int i = 0; i < 30; ++i) out.push_back(s.Sample(logits));
    return out;
  };
  EXPECT_EQ(run(7), run(7));
  EXPECT_NE(run(7), run(8));
}

TEST(Sampler, RepetitionPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplingParams p = Plain(0.0f);
  p.repeat_penalty = 2.0f;
  Sampler s(p, 3);
  s.Accept(0);
  // 4 / 2 = 2 < 3: token 1 wins after the penalty.
  EXPECT_EQ(s.Sample(std::vector<float>{4.0f, 3.0f, -1.0f}), 1);
  Sampler t(p, 3);
  t.Accept(2);
  // -1 * 2 = -2 < -1.5.
  EXPECT_EQ(t.Sample(std::vector<float>{-3.0f, -1.5f, -1.0f}), 1);
}

TEST(Sampler, ValidateNamesTheBadValue) {
  SamplingParams p;
  p.top_p = 1.5f;
  EXPECT_NE(p.Validate().message().find("top-p 1.5"), std::string::npos);
  p = SamplingParams();
  p.repeat_penalty = 0.0f;
  EXPECT_FALSE(p.Validate().ok());
  EXPECT_TRUE(SamplingParams().Validate().ok());
}

}  // namespace
}  // namespace slimlm
