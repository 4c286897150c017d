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
  pool->ParallelFor(n - begin,
                    [&](int64_t b, int64_t e, int) { fn(begin + b, begin + e); });
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

// inv = (L L^T)^-1, from the lower factor L in l.   l, inv: (n, n) row-major.
void InverseFromCholesky(const double* l, int64_t n, double* inv, ThreadPool* pool) {
  ForRange(pool, 0, n, n * n, [&](int64_t c0, int64_t c1) {
    std::vector<double> y(static_cast<size_t>(n));
    for (int64_t c = c0; c < c1; ++c) {
      // L y = e_c (y is zero before c), then L^T x = y; x is column (and row) c of the inverse.
      std::fill(y.begin(), y.end(), 0.0);
      for (int64_t i = c; i < n; ++i) {
        double s = i == c ? 1.0 : 0.0;
        const double* row_i = l + i * n;
        for (int64_t k = c; k < i; ++k) s -= row_i[k] * y[k];
        y[i] = s / row_i[i];
      }
      for (int64_t i = n - 1; i >= 0; --i) {
        double s = y[i];
        for (int64_t k = i + 1; k < n; ++k) s -= l[k * n + i] * y[k];
        y[i] = s / l[i * n + i];
      }
      for (int64_t i = 0; i < n; ++i) inv[c * n + i] = y[i];
    }
  });
}

// The upper Cholesky factor U (H^-1 = U^T U) of the damped Gram matrix's inverse, as floats.
// Dead inputs (zero diagonal) get a unit diagonal and their column of w is zeroed.
Result<std::vector<float>> InverseFactor(std::span<const double> gram, int64_t cols, double damp,
                                         float* w, int64_t rows, ThreadPool* pool) {
  const auto n = static_cast<size_t>(cols);
  std::vector<double> h(gram.begin(), gram.end());
  double mean_diag = 0;
  for (int64_t i = 0; i < cols; ++i) {
    if (h[i * n + i] <= 0.0) {
      h[i * n + i] = 1.0;
      for (int64_t r = 0; r < rows; ++r) w[r * cols + i] = 0.0f;
    }
    mean_diag += h[i * n + i];
  }
  mean_diag /= static_cast<double>(cols);
  std::vector<double> a(n * n), inv(n * n);
  // A Gram matrix of fewer tokens than inputs is singular: damping fixes that; more damping is
  // tried before giving up, as a rounding error can leave a tiny negative pivot.
  for (double lambda = damp; lambda <= 1.0; lambda = std::max(lambda * 10.0, 1e-4)) {
    a = h;
    for (int64_t i = 0; i < cols; ++i) a[i * n + i] += lambda * mean_diag;
    if (!Cholesky(a.data(), cols, pool)) continue;
    InverseFromCholesky(a.data(), cols, inv.data(), pool);
    if (!Cholesky(inv.data(), cols, pool)) continue;
    std::vector<float> u(n * n, 0.0f);
    for (int64_t i = 0; i < cols; ++i) {
      for (int64_t j = i; j < cols; ++j) u[i * n + j] = static_cast<float>(inv[j * n + i]);
    }
    return u;
  }
  return InvalidArgumentError("the calibration Gram matrix ({} x {}) is not positive definite "
                              "even with damping; use more calibration text",
                              cols, cols);
}

}  // namespace

Status SparseGpt(float* w, int64_t rows, int64_t cols, std::span<const double> gram,
                 const SparseGptOptions& options, ThreadPool* pool) {
  if (static_cast<int64_t>(gram.size()) != cols * cols) {
    return InvalidArgumentError("SparseGPT: Gram matrix has {} entries, expected {} x {}",
                                gram.size(), cols, cols);
  }
  SLIMLM_RETURN_IF_ERROR(CheckPatternFits(options.target, cols, "the matrix"));
  SLIMLM_ASSIGN_OR_RETURN(std::vector<float> u,
                          InverseFactor(gram, cols, options.damp, w, rows, pool));
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
