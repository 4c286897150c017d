// How much of a weight matrix to remove, and which weights: the selection shared by every
// pruning method (they differ only in the score they give each weight).
//
// Unstructured sparsity sets a fraction of the weights to zero wherever they are. An N:M
// pattern keeps N of every M consecutive weights of a row (2:4, 4:8), the regular form that a
// kernel can store compactly (values plus a mask) and multiply faster.
#ifndef SLIMLM_PRUNE_SPARSITY_H_
#define SLIMLM_PRUNE_SPARSITY_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "slimlm/core/status.h"

namespace slimlm::prune {

struct SparsityTarget {
  double sparsity = 0.5;  // Fraction of weights set to zero (1 - n/m for a pattern).
  int n = 0;              // Weights kept per group of a pattern.
  int m = 0;              // Group size of a pattern; 0 for unstructured sparsity.

  bool is_pattern() const { return m > 0; }
  // "2:4" or "unstructured 50%".
  std::string ToString() const;
  // "2:4" or "unstructured" (the metadata's slimlm.prune.pattern).
  std::string PatternName() const;
};

// Unstructured sparsity; an error unless 0 < sparsity < 1.
Result<SparsityTarget> UnstructuredTarget(double sparsity);
// "N:M" with 0 < N < M <= 64; an error naming the text otherwise.
Result<SparsityTarget> ParsePattern(std::string_view text);
// An error when a row of `cols` weights of the matrix `name` is not whole groups of the pattern.
Status CheckPatternFits(const SparsityTarget& target, int64_t cols, std::string_view name);

// Where the weights of a matrix compete for survival under unstructured sparsity: across the
// whole matrix (magnitude pruning's classic form) or within each output row (Wanda), which
// leaves every output the same share of its inputs. Patterns always compete within their group.
enum class MaskScope { kMatrix, kRow };

// Chooses the weights to keep from their scores (higher: more important) and zeroes the rest.
//   score: (rows, cols) row-major; w: (rows, cols) row-major, pruned in place.
// Exactly round(sparsity * count) weights are removed per scope (ties broken by position, so the
// result does not depend on threads); a pattern removes m - n of every group of m of a row.
void PruneByScore(const float* score, int64_t rows, int64_t cols, const SparsityTarget& target,
                  MaskScope scope, float* w);

// Zeros among n values.
int64_t CountZeros(const float* x, int64_t n);

}  // namespace slimlm::prune

#endif  // SLIMLM_PRUNE_SPARSITY_H_
