#include "slimlm/prune/sparsegpt.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace slimlm::prune {
namespace {

struct Problem {
  int64_t rows, cols, tokens;
  std::vector<float> w;      // (rows, cols)
  std::vector<float> x;      // (tokens, cols)
  std::vector<double> gram;  // (cols, cols)
};

// Inputs with correlated channels of unequal scale, as activations are: x = z A with a random
// mixing matrix A and per-channel scales; a few channels are much larger (outliers).
Problem MakeProblem(int64_t rows, int64_t cols, int64_t tokens, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Problem p{rows, cols, tokens, {}, {}, {}};
  p.w.resize(static_cast<size_t>(rows * cols));
  for (float& v : p.w) v = normal(rng);
  std::vector<float> mix(static_cast<size_t>(cols * cols));
  for (float& v : mix) v = normal(rng) / std::sqrt(static_cast<float>(cols));
  for (int64_t i = 0; i < cols; ++i) mix[i * cols + i] += 1.0f;
  std::vector<float> scale(static_cast<size_t>(cols));
  for (int64_t c = 0; c < cols; ++c) scale[c] = c % 7 == 0 ? 8.0f : 0.5f + 0.1f * (c % 5);
  p.x.assign(static_cast<size_t>(tokens * cols), 0.0f);
  std::vector<float> z(static_cast<size_t>(cols));
  for (int64_t t = 0; t < tokens; ++t) {
    for (float& v : z) v = normal(rng);
    for (int64_t c = 0; c < cols; ++c) {
      float s = 0;
      for (int64_t k = 0; k < cols; ++k) s += z[k] * mix[k * cols + c];
      p.x[t * cols + c] = s * scale[c];
    }
  }
  p.gram.assign(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t t = 0; t < tokens; ++t) {
    const float* xt = p.x.data() + t * cols;
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t j = 0; j < cols; ++j) p.gram[i * cols + j] += double{xt[i]} * xt[j];
    }
  }
  return p;
}

// sum over tokens and rows of ((w - pruned) x)^2: the output error on the calibration inputs.
double OutputError(const Problem& p, const std::vector<float>& pruned) {
  double err = 0;
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t t = 0; t < p.tokens; ++t) {
      double s = 0;
      for (int64_t c = 0; c < p.cols; ++c) {
        s += (double{p.w[r * p.cols + c]} - pruned[r * p.cols + c]) * p.x[t * p.cols + c];
      }
      err += s * s;
    }
  }
  return err;
}

std::vector<float> Wanda(const Problem& p, const SparsityTarget& target) {
  std::vector<float> score(p.w.size()), w = p.w;
  for (int64_t r = 0; r < p.rows; ++r) {
    for (int64_t c = 0; c < p.cols; ++c) {
      score[r * p.cols + c] =
          std::fabs(p.w[r * p.cols + c]) * static_cast<float>(std::sqrt(p.gram[c * p.cols + c]));
    }
  }
  PruneByScore(score.data(), p.rows, p.cols, target, MaskScope::kRow, w.data());
  return w;
}

std::vector<float> Magnitude(const Problem& p, const SparsityTarget& target) {
  std::vector<float> score(p.w.size()), w = p.w;
  for (size_t i = 0; i < w.size(); ++i) score[i] = std::fabs(w[i]);
  PruneByScore(score.data(), p.rows, p.cols, target, MaskScope::kMatrix, w.data());
  return w;
}

TEST(SparseGpt, BeatsWandaAndMagnitudeOnTheOutputError) {
  const Problem p = MakeProblem(24, 64, 256, 3);
  ThreadPool pool(2);
  for (const SparsityTarget& target :
       {*UnstructuredTarget(0.5), *ParsePattern("2:4"), *ParsePattern("4:8")}) {
    SparseGptOptions o;
    o.target = target;
    o.block_size = 16;
    std::vector<float> w = p.w;
    ASSERT_TRUE(SparseGpt(w.data(), p.rows, p.cols, p.gram, o, &pool).ok());
    EXPECT_EQ(CountZeros(w.data(), p.rows * p.cols), p.rows * p.cols / 2) << target.ToString();
    if (target.is_pattern()) {
      for (int64_t g = 0; g < p.rows * p.cols; g += target.m) {
        EXPECT_EQ(CountZeros(w.data() + g, target.m), target.m - target.n);
      }
    }
    const double sparsegpt = OutputError(p, w);
    const double wanda = OutputError(p, Wanda(p, target));
    const double magnitude = OutputError(p, Magnitude(p, target));
    // The correction must buy a clear margin, not a rounding difference.
    EXPECT_LT(sparsegpt, 0.8 * wanda) << target.ToString();
    EXPECT_LT(wanda, magnitude) << target.ToString();
  }
}

TEST(SparseGpt, RemovingTheFirstColumnIsTheOptimalBrainSurgeonUpdate) {
  // With one weight removed and every other weight after it, the update is the closed form
  // w' = w - (w_0 / [H^-1]_00) [H^-1]_{:,0}.
  const Problem p0 = MakeProblem(1, 8, 64, 4);
  Problem p = p0;
  p.w[0] = 1e-3f;  // The cheapest weight to remove, by far.
  std::vector<double> h = p.gram;
  // H^-1 column 0 by Gauss-Jordan elimination, independently of the library's Cholesky route.
  const int64_t n = p.cols;
  std::vector<double> a(static_cast<size_t>(n * 2 * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) a[i * 2 * n + j] = h[i * n + j];
    a[i * 2 * n + n + i] = 1.0;
  }
  for (int64_t c = 0; c < n; ++c) {
    const double pivot = a[c * 2 * n + c];
    for (int64_t j = 0; j < 2 * n; ++j) a[c * 2 * n + j] /= pivot;
    for (int64_t i = 0; i < n; ++i) {
      if (i == c) continue;
      const double f = a[i * 2 * n + c];
      for (int64_t j = 0; j < 2 * n; ++j) a[i * 2 * n + j] -= f * a[c * 2 * n + j];
    }
  }
  auto hinv = [&](int64_t i, int64_t j) { return a[i * 2 * n + n + j]; };
  SparseGptOptions o;
  o.target = *UnstructuredTarget(1.0 / 8.0);
  o.damp = 0.0;
  std::vector<float> w = p.w;
  ASSERT_TRUE(SparseGpt(w.data(), 1, n, p.gram, o, nullptr).ok());
  EXPECT_EQ(w[0], 0.0f);
  for (int64_t j = 1; j < n; ++j) {
    // The correction itself, to 1% (it is 1e-4 to 1e-2 here; float rounding of w is 1e-7).
    const double expected = -p.w[0] / hinv(0, 0) * hinv(j, 0);
    const double got = double{w[j]} - p.w[j];
    EXPECT_NEAR(got, expected, 1e-2 * std::fabs(expected) + 3e-7) << "column " << j;
    EXPECT_GT(std::fabs(expected), 1e-5) << "column " << j;
  }
}

TEST(SparseGpt, WithUncorrelatedInputsItIsMagnitudePruningWithinGroups) {
  // H = I: no weight can absorb another's error, and the cost is w^2.
  const int64_t rows = 3, cols = 16;
  std::vector<double> identity(static_cast<size_t>(cols * cols), 0.0);
  for (int64_t i = 0; i < cols; ++i) identity[i * cols + i] = 1.0;
  const Problem p = MakeProblem(rows, cols, 4, 5);
  SparseGptOptions o;
  o.target = *ParsePattern("2:4");
  std::vector<float> w = p.w;
  ASSERT_TRUE(SparseGpt(w.data(), rows, cols, identity, o, nullptr).ok());
  EXPECT_EQ(w, Magnitude(p, o.target));
}

TEST(SparseGpt, DeadInputsAreRemovedFirstAndBadGramsRefused) {
  Problem p = MakeProblem(4, 8, 32, 6);
  for (int64_t j = 0; j < p.cols; ++j) {
    p.gram[2 * p.cols + j] = 0.0;  // Input 2 never fires.
    p.gram[j * p.cols + 2] = 0.0;
  }
  SparseGptOptions o;
  o.target = *UnstructuredTarget(0.25);
  std::vector<float> w = p.w;
  ASSERT_TRUE(SparseGpt(w.data(), p.rows, p.cols, p.gram, o, nullptr).ok());
  for (int64_t r = 0; r < p.rows; ++r) EXPECT_EQ(w[r * p.cols + 2], 0.0f);
  EXPECT_FALSE(SparseGpt(w.data(), p.rows, p.cols, std::span(p.gram).first(10), o, nullptr).ok());
  o.target = *ParsePattern("2:3");
  EXPECT_FALSE(SparseGpt(w.data(), p.rows, p.cols, p.gram, o, nullptr).ok());
}

}  // namespace
}  // namespace slimlm::prune
