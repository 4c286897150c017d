#include "slimlm/prune/sparsity.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace slimlm::prune {
namespace {

std::vector<float> RandomWeights(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> w(static_cast<size_t>(n));
  for (float& v : w) v = dist(rng);
  return w;
}

std::vector<float> Magnitudes(const std::vector<float>& w) {
  std::vector<float> s(w.size());
  for (size_t i = 0; i < w.size(); ++i) s[i] = std::fabs(w[i]);
  return s;
}

TEST(SparsityTarget, ParsesPatternsAndRefusesNonsense) {
  Result<SparsityTarget> t = ParsePattern("2:4");
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->n, 2);
  EXPECT_EQ(t->m, 4);
  EXPECT_DOUBLE_EQ(t->sparsity, 0.5);
  EXPECT_EQ(t->ToString(), "2:4");
  for (const char* bad : {"4:2", "2:2", "0:4", "2:", ":4", "2:4x", "a:b", "2-4", "1:128", ""}) {
    EXPECT_FALSE(ParsePattern(bad).ok()) << bad;
  }
  EXPECT_FALSE(UnstructuredTarget(0.0).ok());
  EXPECT_FALSE(UnstructuredTarget(1.0).ok());
  EXPECT_FALSE(UnstructuredTarget(-0.5).ok());
  EXPECT_FALSE(UnstructuredTarget(std::nan("")).ok());
  EXPECT_TRUE(UnstructuredTarget(0.5).ok());
  Status fits = CheckPatternFits(*ParsePattern("4:8"), 36, "blk.0.ffn_down.weight");
  ASSERT_FALSE(fits.ok());
  EXPECT_NE(fits.message().find("not a multiple of 8"), std::string::npos) << fits.message();
}

TEST(PruneByScore, PatternKeepsTheLargestOfEachGroup) {
  const int64_t rows = 5, cols = 24;
  std::vector<float> w = RandomWeights(rows * cols, 1);
  const std::vector<float> original = w;
  PruneByScore(Magnitudes(w).data(), rows, cols, *ParsePattern("2:4"), MaskScope::kRow, w.data());
  for (int64_t g = 0; g < rows * cols; g += 4) {
    int kept = 0;
    for (int64_t i = g; i < g + 4; ++i) {
      if (w[i] == 0.0f) {
        // Every removed weight is no larger than every kept one of its group.
        for (int64_t j = g; j < g + 4; ++j) {
          if (w[j] != 0.0f) {
            EXPECT_LE(std::fabs(original[i]), std::fabs(original[j]));
          }
        }
      } else {
        EXPECT_EQ(w[i], original[i]);
        ++kept;
      }
    }
    EXPECT_EQ(kept, 2) << "group at " << g;
  }
}

TEST(PruneByScore, RowScopeRemovesTheSameShareOfEveryRow) {
  const int64_t rows = 7, cols = 33;
  std::vector<float> w = RandomWeights(rows * cols, 2);
  // Row r's weights are scaled by 10^r: a matrix-wide threshold would empty the first rows.
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] *= std::pow(10.0f, static_cast<float>(r));
  }
  std::vector<float> per_row = w;
  PruneByScore(Magnitudes(w).data(), rows, cols, *UnstructuredTarget(0.3), MaskScope::kRow,
               per_row.data());
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_EQ(CountZeros(per_row.data() + r * cols, cols), 10) << "row " << r;  // round(9.9)
  }
  std::vector<float> per_matrix = w;
  PruneByScore(Magnitudes(w).data(), rows, cols, *UnstructuredTarget(0.3), MaskScope::kMatrix,
               per_matrix.data());
  EXPECT_EQ(CountZeros(per_matrix.data(), rows * cols), 69);  // round(0.3 * 231)
  EXPECT_EQ(CountZeros(per_matrix.data(), cols), cols);       // The smallest row goes first.
}

TEST(PruneByScore, TiesAreBrokenByPosition) {
  std::vector<float> w(8, 1.0f);
  const std::vector<float> score(8, 0.5f);
  PruneByScore(score.data(), 1, 8, *UnstructuredTarget(0.5), MaskScope::kRow, w.data());
  EXPECT_EQ(w, (std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1}));
}

}  // namespace
}  // namespace slimlm::prune
