// SparseGPT (Frantar and Alistarh, 2023): pruning as layer-wise reconstruction.
//
// Removing weight j of a row changes that row's output on the calibration inputs X by
// w_j x_j; the remaining weights of the row can absorb most of that change. With the inputs'
// Gram matrix H = sum over tokens of x x^T and U the upper Cholesky factor of H^-1
// (H^-1 = U^T U), the optimal correction of the weights after j (in column order) is
// (w_j / U_jj) times row j of U, and the cost of removing w_j is w_j^2 / U_jj^2 (the Optimal
// Brain Surgeon terms, with the columns before j already fixed).
// Columns are processed in order, in blocks whose corrections reach the rest of the row in one
// batched update; the mask of a block is chosen when the block is reached, from the weights as
// corrected so far.
#ifndef SLIMLM_PRUNE_SPARSEGPT_H_
#define SLIMLM_PRUNE_SPARSEGPT_H_

#include <cstdint>
#include <span>
#include <vector>

#include "slimlm/core/status.h"
#include "slimlm/core/thread_pool.h"
#include "slimlm/prune/sparsity.h"

namespace slimlm::prune {

struct SparseGptOptions {
  SparsityTarget target;
  int64_t block_size = 128;  // Columns whose masks are chosen together (a multiple of m).
  double damp = 0.01;        // Added to H's diagonal, as a fraction of its mean: keeps H^-1 sane.
};

// What SparseGPT needs of a Gram matrix, computed once and shared by the matrices that multiply
// the same inputs (q, k and v; gate and up).
struct SparseGptFactor {
  int64_t cols = 0;
  std::vector<float> u;       // (cols, cols) row-major, upper triangle: H^-1 = U^T U (damped).
  std::vector<int64_t> dead;  // Inputs that never fire (zero diagonal).
};

// Factors the damped Gram matrix (see below). Peak memory: two cols x cols doubles besides the
// Gram matrix, and the result's floats.
Result<SparseGptFactor> FactorGram(std::span<const double> gram, int64_t cols, double damp,
                                   ThreadPool* pool);

// Prunes w: (rows, factor.cols) row-major f32 in place and corrects its remaining weights.
Status SparseGpt(float* w, int64_t rows, const SparseGptFactor& factor,
                 const SparseGptOptions& options, ThreadPool* pool);

// FactorGram, then SparseGpt above: prunes w in place and corrects its remaining weights.
//   w: (rows, cols) row-major f32.
//   gram: (cols, cols) row-major, symmetric: sum over calibration tokens of x x^T (any positive
//         scale). Inputs that never fire (zero diagonal) have their weights removed for free.
// Unstructured sparsity removes round(sparsity * rows * block) weights of each column block
// (compared across rows, as the paper does); a pattern removes m - n of every m of a row.
// Rows are spread over `pool`. Errors: a Gram matrix of the wrong size, or one that stays
// singular after damping.
Status SparseGpt(float* w, int64_t rows, int64_t cols, std::span<const double> gram,
                 const SparseGptOptions& options, ThreadPool* pool);

}  // namespace slimlm::prune

#endif  // SLIMLM_PRUNE_SPARSEGPT_H_
