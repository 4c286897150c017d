// Products of f16_nm (50% N:M-sparse f16) weights: the reference against the dense product of
// the expanded weights, and every supported path against both, on random shapes with odd row
// counts, row ranges that are not the whole matrix, and 1 to 13 tokens. The paths multiply the
// file layout (no packing) while other types of the same table stay packed.
//
// Tolerances come from f32 accumulation: a sum whose every term goes through at most d roundings
// is within d * u * sum |w x| of the exact value (u = 2^-24). The reference adds k terms one
// after another (d = k + 1, the product rounded apart); the SIMD paths keep 8 or 16 lanes times 2
// accumulators, so a lane adds at most k / 16 terms, then the accumulators and lanes are added
// (d <= k / 16 + 8).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels {
namespace {

constexpr double kUnitRoundoff = 5.9604644775390625e-8;  // 2^-24

// (rows, cols) weights pruned to `keep` of every `group` (2:4 or 4:8) at random places, as
// f16_nm bytes and as the exact f32 values they hold.
struct SparseMatrix {
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // (rows, cols), zeros where pruned
  size_t row_bytes = 0;
};

SparseMatrix MakeSparse(std::mt19937& rng, int64_t rows, int64_t cols, int keep, int group) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> dense(static_cast<size_t>(rows * cols), 0.0f);
  std::vector<int> order(static_cast<size_t>(group));
  for (int64_t g = 0; g < rows * cols; g += group) {
    for (int i = 0; i < group; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int i = 0; i < keep; ++i) dense[g + order[i]] = dist(rng);
  }
  SparseMatrix m;
  m.row_bytes = RowBytes(DType::kF16NM, cols);
  m.bytes.resize(m.row_bytes * static_cast<size_t>(rows));
  m.values.resize(dense.size());
  for (int64_t r = 0; r < rows; ++r) {
    EXPECT_TRUE(IsRowNMHalfSparse(dense.data() + r * cols, cols));
    RowFromF32(DType::kF16NM, dense.data() + r * cols, m.bytes.data() + r * m.row_bytes, cols);
    RowToF32(DType::kF16NM, m.bytes.data() + r * m.row_bytes, m.values.data() + r * cols, cols);
  }
  return m;
}

std::vector<float> RandomVector(std::mt19937& rng, int64_t n) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// x: (n_tokens, k) f32 as `table` prepares it for f16_nm weights: a plain copy.
std::vector<uint8_t> Activations(const KernelTable& table, const std::vector<float>& x,
                                 int64_t n_tokens, int64_t k) {
  const size_t row_bytes = table.activation_row_bytes(DType::kF16NM, k);
  EXPECT_EQ(row_bytes, static_cast<size_t>(k) * sizeof(float)) << IsaName(table.isa);
  std::vector<uint8_t> out(row_bytes * static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    table.convert_activation(DType::kF16NM, x.data() + t * k, out.data() + t * row_bytes, k);
  }
  EXPECT_EQ(std::memcmp(out.data(), x.data(), out.size()), 0) << IsaName(table.isa);
  return out;
}

// The matrix as every path takes it: the file layout, never packed.
Matrix FileLayout(const KernelTable& table, const SparseMatrix& m, int64_t rows, int64_t cols) {
  EXPECT_EQ(table.packed_bytes(DType::kF16NM, rows, cols), 0u) << IsaName(table.isa);
  return Matrix{DType::kF16NM, rows, cols, m.bytes.data(), m.row_bytes, false};
}

struct Exact {
  double value;      // sum w x in double (exact up to 1e-16 relative)
  double magnitude;  // sum |w x|
};

Exact ExactProduct(const SparseMatrix& w, const std::vector<float>& x, int64_t k, int64_t r,
                   int64_t t) {
  Exact e{0.0, 0.0};
  for (int64_t i = 0; i < k; ++i) {
    const double p = static_cast<double>(w.values[r * k + i]) * x[t * k + i];
    e.value += p;
    e.magnitude += std::fabs(p);
  }
  return e;
}

double RefDepth(int64_t k) { return static_cast<double>(k + 1); }
// The x86 paths have sparse kernels; the others (NEON) run the reference.
double PathDepth(const KernelTable& table, int64_t k) {
  const bool sparse_kernel = table.isa == Isa::kAvx2 || table.isa == Isa::kAvx512;
  return sparse_kernel ? static_cast<double>(k / 16 + 8) : RefDepth(k);
}

// The reference is the dense f32 product of the expanded weights: the same k-term sum in index
// order, whose zero terms leave it unchanged. (Equal to the bit where the compiler fuses the
// multiply-adds of neither loop, as on x86 without -mfma; aarch64 compilers may fuse one and
// not the other, so they are compared within both sums' bounds.) Both are within the f32 bound
// of the exact product.
TEST(SparseMatMul, ReferenceEqualsDenseProductOfExpandedWeights) {
  std::mt19937 rng(3);
  for (int group : {4, 8}) {
    for (int64_t k : {32, 96, 1024}) {
      const int64_t rows = 7, n_tokens = 3;
      SparseMatrix w = MakeSparse(rng, rows, k, group / 2, group);
      std::vector<float> x = RandomVector(rng, n_tokens * k);
      std::vector<float> y(static_cast<size_t>(n_tokens * rows)), y_dense = y;
      ref::MatMul(FileLayout(ref::Table(), w, rows, k), x.data(), k * sizeof(float), y.data(), rows,
                  n_tokens, 0, rows);
      Matrix dense{DType::kF32, rows, k, w.values.data(), k * sizeof(float), false};
      ref::MatMul(dense, x.data(), k * sizeof(float), y_dense.data(), rows, n_tokens, 0, rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          const Exact e = ExactProduct(w, x, k, r, t);
          const double bound = RefDepth(k) * kUnitRoundoff * e.magnitude + 1e-30;
          EXPECT_NEAR(y[t * rows + r], e.value, bound) << group / 2 << ":" << group << " k=" << k;
          EXPECT_NEAR(y[t * rows + r], y_dense[t * rows + r], 2 * bound)
              << group / 2 << ":" << group << " k=" << k;
#if defined(__x86_64__) && !defined(__FMA__)
          EXPECT_EQ(y[t * rows + r], y_dense[t * rows + r]) << group / 2 << ":" << group;
#endif
        }
      }
    }
  }
}

// Every path on random shapes: odd row counts, 1, 3, 8 and 13 tokens, 32 to 1024 columns, a row
// range [r0, r1) that starts at a multiple of row_block and usually is not the whole matrix.
// Outside it nothing may be written.
TEST(SparseMatMul, EveryPathMatchesReferenceAndExactProductOnOddShapes) {
  std::mt19937 rng(11);
  for (Isa isa : SupportedIsas()) {
    const KernelTable& table = **KernelsFor(isa);
    for (int trial = 0; trial < 24; ++trial) {
      const int group = trial % 2 == 0 ? 4 : 8;
      const int64_t k = 32 * (1 + static_cast<int64_t>(rng() % 32));
      const int64_t rows = 1 + 2 * static_cast<int64_t>(rng() % 40);
      const int64_t n_tokens = std::vector<int64_t>{1, 3, 8, 13}[trial % 4];
      const int64_t groups = (rows + table.row_block - 1) / table.row_block;
      const int64_t g0 = static_cast<int64_t>(rng() % groups);
      const int64_t g1 = g0 + 1 + static_cast<int64_t>(rng() % (groups - g0));
      const int64_t r0 = g0 * table.row_block;
      const int64_t r1 = std::min(rows, g1 * table.row_block - static_cast<int64_t>(rng() % 3));
      if (r1 <= r0) continue;
      SparseMatrix w = MakeSparse(rng, rows, k, group / 2, group);
      std::vector<float> x = RandomVector(rng, n_tokens * k);
      std::vector<uint8_t> act = Activations(table, x, n_tokens, k);
      const float kSentinel = 12345.0f;
      std::vector<float> y(static_cast<size_t>(n_tokens * rows), kSentinel), y_ref = y;
      table.matmul(FileLayout(table, w, rows, k), act.data(), k * sizeof(float), y.data(), rows,
                   n_tokens, r0, r1);
      ref::MatMul(FileLayout(ref::Table(), w, rows, k), x.data(), k * sizeof(float), y_ref.data(),
                  rows, n_tokens, r0, r1);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          const size_t i = static_cast<size_t>(t * rows + r);
          if (r < r0 || r >= r1) {
            ASSERT_EQ(y[i], kSentinel) << IsaName(isa) << " wrote outside its rows, r=" << r;
            continue;
          }
          const Exact e = ExactProduct(w, x, k, r, t);
          const double path_bound = PathDepth(table, k) * kUnitRoundoff * e.magnitude + 1e-30;
          const double ref_bound = RefDepth(k) * kUnitRoundoff * e.magnitude;
          ASSERT_NEAR(y[i], e.value, path_bound) << IsaName(isa) << " k=" << k << " rows=" << rows
                                                 << " r=" << r << " t=" << t << "/" << n_tokens;
          ASSERT_NEAR(y[i], y_ref[i], path_bound + ref_bound)
              << IsaName(isa) << " k=" << k << " rows=" << rows << " r=" << r << " t=" << t << "/"
              << n_tokens;
        }
      }
    }
  }
}

// A row's result is the same to the bit whether its tokens come one at a time or together, and
// whatever range of rows a call covers (threads split rows; prompts are cut in batches).
TEST(SparseMatMul, ResultsDoNotDependOnTokenBatchingOrRowSplit) {
  std::mt19937 rng(19);
  const int64_t rows = 77, k = 320, n_tokens = 13;
  SparseMatrix w = MakeSparse(rng, rows, k, 2, 4);
  std::vector<float> x = RandomVector(rng, n_tokens * k);
  for (Isa isa : SupportedIsas()) {
    const KernelTable& table = **KernelsFor(isa);
    const Matrix m = FileLayout(table, w, rows, k);
    std::vector<float> all(static_cast<size_t>(n_tokens * rows)), one_by_one = all;
    table.matmul(m, x.data(), k * sizeof(float), all.data(), rows, n_tokens, 0, rows);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r0 = 0; r0 < rows; r0 += 2 * table.row_block) {
        const int64_t r1 = std::min(rows, r0 + 2 * table.row_block);
        table.matmul(m, x.data() + t * k, k * sizeof(float), one_by_one.data() + t * rows, rows, 1,
                     r0, r1);
      }
    }
    EXPECT_EQ(all, one_by_one) << IsaName(isa);
  }
}

// One table serves packed matrices of other types beside unpacked f16_nm ones: the sparse
// product matches the packed dense f16 product of the same (expanded) weights.
TEST(SparseMatMul, SitsBesidePackedDenseMatricesOfTheSamePath) {
  std::mt19937 rng(23);
  const int64_t rows = 45, k = 256, n_tokens = 3;
  SparseMatrix w = MakeSparse(rng, rows, k, 4, 8);
  std::vector<uint8_t> f16(RowBytes(DType::kF16, k) * rows);
  for (int64_t r = 0; r < rows; ++r) {
    RowFromF32(DType::kF16, w.values.data() + r * k, f16.data() + r * RowBytes(DType::kF16, k), k);
  }
  std::vector<float> x = RandomVector(rng, n_tokens * k);
  for (Isa isa : SupportedIsas()) {
    const KernelTable& table = **KernelsFor(isa);
    Matrix dense{DType::kF16, rows, k, f16.data(), RowBytes(DType::kF16, k), false};
    std::vector<uint8_t> packed(table.packed_bytes(DType::kF16, rows, k));
    if (!packed.empty()) {
      table.pack(DType::kF16, f16.data(), dense.row_bytes, rows, k, 0, rows, packed.data());
      dense.data = packed.data();
      dense.packed = true;
    }
    EXPECT_EQ(dense.packed, table.row_block > 1) << IsaName(isa);
    std::vector<float> y_sparse(static_cast<size_t>(n_tokens * rows)), y_dense = y_sparse;
    table.matmul(FileLayout(table, w, rows, k), x.data(), k * sizeof(float), y_sparse.data(), rows,
                 n_tokens, 0, rows);
    table.matmul(dense, x.data(), k * sizeof(float), y_dense.data(), rows, n_tokens, 0, rows);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        const Exact e = ExactProduct(w, x, k, r, t);
        // The dense product adds k terms in one chain per row (the packed layouts and the
        // reference alike).
        const double bound = (PathDepth(table, k) + RefDepth(k)) * kUnitRoundoff * e.magnitude;
        ASSERT_NEAR(y_sparse[t * rows + r], y_dense[t * rows + r], bound)
            << IsaName(isa) << " r=" << r << " t=" << t;
      }
    }
  }
}

}  // namespace
}  // namespace slimlm::kernels
