#include "slimlm/prune/sparsegpt.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace slimlm::prune {
namespace {

// Parallel over i in [begin, n) when there is enough work to share.
void ForRange(ThreadPool* pool, int64_t begin, int64_t n, int64_t work_per_item,
              FunctionRef<void(int64_t, int64_t)> fn) {
  if (pool == nullptr || pool->size() == 1 || (n - begin) * work_per_item < (int64_t{1} << 16)) {
    fn(begin, n);
    return;
  }
  pool->ParallelFor(n - begin, [&](int64_t b, int64_t e, int) { fn(begin + b, begin + e); });
}

double Dot(const double* a, const double* b, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < n; ++k) s += a[k] * b[k];
  return s;
}

// a = L L^T with L lower triangular, in place (the upper triangle is left as it was).
//   a: (n, n) row-major. False when a is not positive definite.
bool Cholesky(double* a, int64_t n, ThreadPool* pool) {
  for (int64_t j = 0; j < n; ++j) {
    double* row_j = a + j * n;
    const double s = row_j[j] - Dot(row_j, row_j, j);
    if (!(s > 0.0) || !std::isfinite(s)) return false;
    const double d = std::sqrt(s);
    row_j[j] = d;
    ForRange(pool, j + 1, n, j, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        double* row_i = a + i * n;
        row_i[j] = (row_i[j] - Dot(row_i, row_j, j)) / d;
      }
    });
  }
  return true;
}

// inv = (L L^T)^-1 from the lower factor L, through M = L^-T (upper triangular): row c of M
// solves L x = e_c, and inv[i][j] = sum over k of M[i][k] M[j][k], so every loop runs along
// rows.   l, m, inv: (n, n) row-major; l and inv may be the same buffer.
void InverseFromCholesky(const double* l, int64_t n, double* m, double* inv, ThreadPool* pool) {
  ForRange(pool, 0, n, n * n / 2, [&](int64_t c0, int64_t c1) {
    for (int64_t c = c0; c < c1; ++c) {
      double* x = m + c * n;
      std::fill(x, x + c, 0.0);
      for (int64_t i = c; i < n; ++i) {
        const double* row_i = l + i * n;
        x[i] = ((i == c ? 1.0 : 0.0) - Dot(row_i + c, x + c, i - c)) / row_i[i];
      }
    }
  });
  ForRange(pool, 0, n, n * n / 3, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = i; j < n; ++j) inv[i * n + j] = Dot(m + i * n + j, m + j * n + j, n - j);
    }
  });
  // Mirror into the lower triangle, which Cholesky reads.
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) inv[i * n + j] = inv[j * n + i];
  }
}

}  // namespace

Result<SparseGptFactor> FactorGram(std::span<const double> gram, int64_t cols, double damp,
                                   ThreadPool* pool) {
  if (static_cast<int64_t>(gram.size()) != cols * cols) {
    return InvalidArgumentError("SparseGPT: Gram matrix has {} entries, expected {} x {}",
                                gram.size(), cols, cols);
  }
  const auto n = static_cast<size_t>(cols);
  SparseGptFactor f;
  f.cols = cols;
  double mean_diag = 0;
  for (int64_t i = 0; i < cols; ++i) {
    const double d = gram[i * n + i];
    if (d <= 0.0) f.dead.push_back(i);
    mean_diag += d > 0.0 ? d : 1.0;
  }
  mean_diag /= static_cast<double>(cols);
  std::vector<double> a(n * n), m(n * n);
  // A Gram matrix of fewer tokens than inputs is singular: damping fixes that; more damping is
  // tried before giving up, as a rounding error can leave a tiny negative pivot.
  for (double lambda = damp; lambda <= 1.0; lambda = std::max(lambda * 10.0, 1e-4)) {
    std::copy(gram.begin(), gram.end(), a.begin());
    for (int64_t i : f.dead) a[i * n + i] = 1.0;  // Dead inputs: a unit diagonal.
    for (int64_t i = 0; i < cols; ++i) a[i * n + i] += lambda * mean_diag;
    if (!Cholesky(a.data(), cols, pool)) continue;
    InverseFromCholesky(a.data(), cols, m.data(), a.data(), pool);
    if (!Cholesky(a.data(), cols, pool)) continue;
    f.u.assign(n * n, 0.0f);
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t j = i; j < cols; ++j) f.u[i * n + j] = static_cast<float>(a[j * n + i]);
    }
    return f;
  }
  return InvalidArgumentError(
      "the calibration Gram matrix ({} x {}) is not positive definite even with damping; use "
      "more calibration text",
      cols, cols);
}

Status SparseGpt(float* w, int64_t rows, int64_t cols, std::span<const double> gram,
                 const SparseGptOptions& options, ThreadPool* pool) {
  SLIMLM_ASSIGN_OR_RETURN(SparseGptFactor factor, FactorGram(gram, cols, options.damp, pool));
  return SparseGpt(w, rows, factor, options, pool);
}

Status SparseGpt(float* w, int64_t rows, const SparseGptFactor& factor,
                 const SparseGptOptions& options, ThreadPool* pool) {
  const int64_t cols = factor.cols;
  SLIMLM_RETURN_IF_ERROR(CheckPatternFits(options.target, cols, "the matrix"));
  for (int64_t i : factor.dead) {
    for (int64_t r = 0; r < rows; ++r) w[r * cols + i] = 0.0f;
  }
  const std::vector<float>& u = factor.u;
  const SparsityTarget& target = options.target;
  // A block holds whole groups of the pattern.
  const int64_t m = target.is_pattern() ? target.m : 1;
  const int64_t block = std::max<int64_t>(m, options.block_size / m * m);
  std::vector<float> keep;  // Unstructured: (rows, block), 0 where the weight goes.
  std::vector<float> score;
  for (int64_t i1 = 0; i1 < cols; i1 += block) {
    const int64_t i2 = std::min(cols, i1 + block);
    const int64_t nb = i2 - i1;
    if (!target.is_pattern()) {
      // The cost of removing each weight of the block, compared across all rows.
      score.resize(static_cast<size_t>(rows * nb));
      keep.assign(static_cast<size_t>(rows * nb), 1.0f);
      for (int64_t r = 0; r < rows; ++r) {
        for (int64_t j = i1; j < i2; ++j) {
          const float d = u[j * cols + j];
          const float v = w[r * cols + j];
          score[r * nb + j - i1] = v * v / (d * d);
        }
      }
      PruneByScore(score.data(), rows, nb, target, MaskScope::kMatrix, keep.data());
    }
    ForRange(pool, 0, rows, cols * nb, [&](int64_t r0, int64_t r1) {
      std::vector<float> err(static_cast<size_t>(nb));
      std::vector<float> group_keep(static_cast<size_t>(m)), group_score(static_cast<size_t>(m));
      for (int64_t r = r0; r < r1; ++r) {
        float* row = w + r * cols;
        for (int64_t i = i1; i < i2; ++i) {
          if (target.is_pattern() && (i - i1) % m == 0) {
            // The group's mask, from the weights as corrected by the columns before it.
            for (int64_t j = 0; j < m; ++j) {
              const float d = u[(i + j) * cols + i + j];
              group_score[j] = row[i + j] * row[i + j] / (d * d);
              group_keep[j] = 1.0f;
            }
            PruneByScore(group_score.data(), 1, m, target, MaskScope::kRow, group_keep.data());
          }
          const bool drop = target.is_pattern() ? group_keep[(i - i1) % m] == 0.0f
                                                : keep[r * nb + i - i1] == 0.0f;
          const float* u_i = u.data() + i * cols;
          const float e = drop ? row[i] / u_i[i] : 0.0f;
          err[i - i1] = e;
          if (!drop) continue;
          row[i] = 0.0f;
          for (int64_t j = i + 1; j < i2; ++j) row[j] -= e * u_i[j];
        }
        // The block's corrections reach the columns after it in one pass.
        for (int64_t i = i1; i < i2; ++i) {
          const float e = err[i - i1];
          if (e == 0.0f) continue;
          const float* u_i = u.data() + i * cols;
          for (int64_t j = i2; j < cols; ++j) row[j] -= e * u_i[j];
        }
      }
    });
  }
  return Status::Ok();
}

}  // namespace slimlm::prune
