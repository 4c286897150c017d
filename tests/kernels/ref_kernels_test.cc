// The scalar references against independent double-precision formulas, and every supported
// fast path against the references, on random shapes with odd sizes and tails.
#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm::kernels {
namespace {

std::vector<float> RandomVector(std::mt19937& rng, int64_t n, float scale = 1.0f) {
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

// Weights of `type` with `rows` rows of k elements, plus their exact f32 values.
struct TypedMatrix {
  std::vector<uint8_t> bytes;
  std::vector<float> values;  // dequantized, (rows, k)
  size_t row_bytes;
};

// From raw: (rows, k) f32.
TypedMatrix MakeMatrix(DType type, const std::vector<float>& raw, int64_t rows, int64_t k) {
  TypedMatrix m;
  m.row_bytes = RowBytes(type, k);
  m.bytes.resize(m.row_bytes * static_cast<size_t>(rows));
  m.values.resize(raw.size());
  for (int64_t r = 0; r < rows; ++r) {
    RowFromF32(type, raw.data() + r * k, m.bytes.data() + r * m.row_bytes, k);
    RowToF32(type, m.bytes.data() + r * m.row_bytes, m.values.data() + r * k, k);
  }
  return m;
}

// From standard normal values.
TypedMatrix MakeMatrix(std::mt19937& rng, DType type, int64_t rows, int64_t k) {
  return MakeMatrix(type, RandomVector(rng, rows * k), rows, k);
}

// The reference's activations for x: (n_tokens, k), and their exact values (q8_0 for quantized
// weights, so the products below compare like with like).
struct Activations {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
  size_t row_bytes;
};

Activations MakeActivations(const KernelTable& table, DType weight, const std::vector<float>& x,
                            int64_t n_tokens, int64_t k) {
  Activations a;
  a.row_bytes = table.activation_row_bytes(weight, k);
  a.bytes.resize(a.row_bytes * static_cast<size_t>(n_tokens));
  for (int64_t t = 0; t < n_tokens; ++t) {
    table.convert_activation(weight, x.data() + t * k, a.bytes.data() + t * a.row_bytes, k);
  }
  // Exact values from the reference's layout (q8_0 blocks or f32).
  a.values.resize(x.size());
  const DType act = Traits(weight).quantized ? DType::kQ8_0 : DType::kF32;
  for (int64_t t = 0; t < n_tokens; ++t) {
    std::vector<uint8_t> ref_row(RowBytes(act, k));
    ref::ConvertActivation(weight, x.data() + t * k, ref_row.data(), k);
    RowToF32(act, ref_row.data(), a.values.data() + t * k, k);
  }
  return a;
}

// The matrix as `table` multiplies it: packed into `storage` when the path packs.
Matrix Prepare(const KernelTable& table, DType type, const TypedMatrix& m, int64_t rows, int64_t k,
               std::vector<uint8_t>* storage) {
  Matrix w{type, rows, k, m.bytes.data(), m.row_bytes, false};
  const size_t bytes = table.packed_bytes(type, rows, k);
  if (bytes == 0) return w;
  storage->assign(bytes, 0xAB);  // Garbage where packing must write.
  table.pack(type, m.bytes.data(), m.row_bytes, rows, k, 0, rows, storage->data());
  w.data = storage->data();
  w.packed = true;
  return w;
}

// Sum over i of |w[r, i] * x[t, i]|: the scale of the rounding error of y[t, r].
double Magnitude(const TypedMatrix& w, const Activations& a, int64_t k, int64_t r, int64_t t) {
  double m = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    m += std::fabs(static_cast<double>(w.values[r * k + i]) * a.values[t * k + i]);
  }
  return m;
}

class MatMulTest : public ::testing::TestWithParam<DType> {};

// The reference equals the exact product of the values it was given, up to f32 rounding of a
// k-term sum: |error| <= k * eps * sum |w||x| (a standard bound for recursive summation).
TEST_P(MatMulTest, ReferenceMatchesDoublePrecisionProduct) {
  const DType type = GetParam();
  std::mt19937 rng(7);
  const int block = Traits(type).block_size;
  // Whole blocks of the type (of 32 for the plain types): 1, 3, 7 and 13 of them.
  const int64_t unit = std::max(block, 32);
  for (int64_t k : {unit, 3 * unit, 7 * unit, 13 * unit}) {
    const int64_t rows = 5, n_tokens = 3;
    TypedMatrix w = MakeMatrix(rng, type, rows, k);
    std::vector<float> x = RandomVector(rng, n_tokens * k);
    Activations a = MakeActivations(ref::Table(), type, x, n_tokens, k);
    std::vector<float> y(static_cast<size_t>(n_tokens * rows), -1.0f);
    Matrix m{type, rows, k, w.bytes.data(), w.row_bytes, false};
    ref::MatMul(m, a.bytes.data(), a.row_bytes, y.data(), rows, n_tokens, 0, rows);
    for (int64_t t = 0; t < n_tokens; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        double exact = 0.0;
        for (int64_t i = 0; i < k; ++i) {
          exact += static_cast<double>(w.values[r * k + i]) * a.values[t * k + i];
        }
        double bound = static_cast<double>(k) * 1.2e-7 * Magnitude(w, a, k, r, t) + 1e-30;
        EXPECT_NEAR(y[t * rows + r], exact, bound) << DTypeName(type) << " k=" << k;
      }
    }
  }
}

// Every supported path, on its own packed layout, equals the reference on random shapes: odd row
// counts (partial packed groups), row ranges starting at any group, 1 to 13 tokens, and row
// lengths from one block to many (plus odd lengths for the plain types). Outside [r0, r1)
// nothing may be written.
TEST_P(MatMulTest, EveryPathMatchesReferenceOnOddShapes) {
  const DType type = GetParam();
  std::mt19937 rng(11);
  const int block = Traits(type).block_size;
  for (Isa isa : SupportedIsas()) {
    const KernelTable& table = **KernelsFor(isa);
    for (int trial = 0; trial < 16; ++trial) {
      const int64_t k = block * (1 + static_cast<int64_t>(rng() % (block > 32 ? 12 : 40))) +
                        (block == 1 ? static_cast<int64_t>(rng() % 7) : 0);
      const int64_t rows = 1 + static_cast<int64_t>(rng() % 75);
      const int64_t n_tokens = 1 + static_cast<int64_t>(rng() % 13);
      const int64_t groups = (rows + table.row_block - 1) / table.row_block;
      const int64_t g0 = static_cast<int64_t>(rng() % groups);
      const int64_t g1 = g0 + 1 + static_cast<int64_t>(rng() % (groups - g0));
      const int64_t r0 = g0 * table.row_block, r1 = std::min(rows, g1 * table.row_block);
      TypedMatrix w = MakeMatrix(rng, type, rows, k);
      std::vector<uint8_t> packed;
      Matrix m = Prepare(table, type, w, rows, k, &packed);
      std::vector<float> x = RandomVector(rng, n_tokens * k);
      Activations a = MakeActivations(table, type, x, n_tokens, k);
      Activations a_ref = MakeActivations(ref::Table(), type, x, n_tokens, k);
      const float kSentinel = 12345.0f;
      std::vector<float> y(static_cast<size_t>(n_tokens * rows), kSentinel);
      std::vector<float> y_ref = y;
      table.matmul(m, a.bytes.data(), a.row_bytes, y.data(), rows, n_tokens, r0, r1);
      Matrix m_ref{type, rows, k, w.bytes.data(), w.row_bytes, false};
      ref::MatMul(m_ref, a_ref.bytes.data(), a_ref.row_bytes, y_ref.data(), rows, n_tokens, r0, r1);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          const size_t i = static_cast<size_t>(t * rows + r);
          if (r < r0 || r >= r1) {
            ASSERT_EQ(y[i], kSentinel) << IsaName(isa) << " wrote outside its rows, r=" << r;
            continue;
          }
          // Both sums carry at most k * eps relative rounding each.
          double bound =
              2.0 * static_cast<double>(k) * 1.2e-7 * Magnitude(w, a_ref, k, r, t) + 1e-30;
          ASSERT_NEAR(y[i], y_ref[i], bound)
              << IsaName(isa) << " " << DTypeName(type) << " k=" << k << " rows=" << rows
              << " r=" << r << " t=" << t << "/" << n_tokens;
        }
      }
    }
  }
}

// Codes at the ends of their range make the largest integer sums a block can have (q8_0: 127 x
// 127 x 32, and 255 x 127 x 32 before the +128 offset comes off): fast paths that keep sums in
// narrower forms (int16 pairs, the bits of a float) must still be exact there, for every tile
// size. Rows are +-1 by sign pattern, so each block's codes are all +-127 (q8_0) or +-8/+7
// (q4_0), against activations of +-1 (codes +-127) in patterns of their own.
void ExpectExactAtLargestBlockSums(DType type) {
  const int64_t k = 7 * 32, rows = 37, max_tokens = 12;
  auto sign = [](int64_t pattern, int64_t i) {
    switch (pattern % 4) {
      case 0:
        return 1.0f;
      case 1:
        return -1.0f;
      case 2:
        return i % 2 == 0 ? 1.0f : -1.0f;
      default:
        return (i / 32) % 2 == 0 ? -1.0f : 1.0f;  // Whole blocks alternate.
    }
  };
  std::vector<float> raw(static_cast<size_t>(rows * k));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t i = 0; i < k; ++i) raw[r * k + i] = sign(r, i);
  }
  const TypedMatrix w = MakeMatrix(type, raw, rows, k);
  std::vector<float> x(static_cast<size_t>(max_tokens * k));
  for (int64_t t = 0; t < max_tokens; ++t) {
    for (int64_t i = 0; i < k; ++i) x[t * k + i] = sign(t / 2 + 3 * (t % 2), i);
  }
  for (Isa isa : SupportedIsas()) {
    const KernelTable& table = **KernelsFor(isa);
    std::vector<uint8_t> packed;
    Matrix m = Prepare(table, type, w, rows, k, &packed);
    for (int64_t n_tokens : {1, 2, 3, 8, 12}) {
      Activations a = MakeActivations(table, type, x, n_tokens, k);
      std::vector<float> y(static_cast<size_t>(n_tokens * rows));
      table.matmul(m, a.bytes.data(), a.row_bytes, y.data(), rows, n_tokens, 0, rows);
      for (int64_t t = 0; t < n_tokens; ++t) {
        for (int64_t r = 0; r < rows; ++r) {
          double exact = 0.0;
          for (int64_t i = 0; i < k; ++i) {
            exact += static_cast<double>(w.values[r * k + i]) * a.values[t * k + i];
          }
          const double bound = static_cast<double>(k) * 1.2e-7 * Magnitude(w, a, k, r, t);
          ASSERT_NEAR(y[t * rows + r], exact, bound) << IsaName(isa) << " " << DTypeName(type)
                                                     << " r=" << r << " t=" << t << "/" << n_tokens;
        }
      }
    }
  }
}

TEST(MatMulInt8, EveryPathIsExactWhereBlockSumsAreLargest) {
  for (DType type : {DType::kQ8_0, DType::kQ4_0}) ExpectExactAtLargestBlockSums(type);
}

// The AMX path's tile products give the AVX-512 path's results bit for bit (the same exact
// integer sums, then the same float operations in the same order), so a sequence decodes to the
// same tokens alone (1 token: AVX-512) as in a batch (tiles). Token counts cover one tile (2..16
// tokens), whole tiles plus a rest (17..40), and a prefill of several activation chunks (k 4096:
// 32 tokens per 256 KB chunk); row counts and ranges leave partial groups.
TEST(MatMulInt8, AmxEqualsAvx512BitForBit) {
  Result<const KernelTable*> amx = KernelsFor(Isa::kAmx);
  if (!amx.ok()) GTEST_SKIP() << "no AMX here: " << amx.status().message();
  const KernelTable& avx512 = **KernelsFor(Isa::kAvx512);
  std::mt19937 rng(23);
  for (DType type : {DType::kQ4_0, DType::kQ8_0}) {
    for (int trial = 0; trial < 24; ++trial) {
      const int64_t k = trial < 2 ? 4096 : 32 * (1 + static_cast<int64_t>(rng() % 45));
      const int64_t rows = 1 + static_cast<int64_t>(rng() % 70);
      const int64_t n_tokens = trial < 2 ? 77 + 3 * trial : 1 + static_cast<int64_t>(rng() % 40);
      const int64_t r0 = 16 * static_cast<int64_t>(rng() % ((rows + 15) / 16));
      TypedMatrix w = MakeMatrix(rng, type, rows, k);
      std::vector<uint8_t> packed;
      Matrix m = Prepare(**amx, type, w, rows, k, &packed);
      Activations a = MakeActivations(**amx, type, RandomVector(rng, n_tokens * k), n_tokens, k);
      std::vector<float> y(static_cast<size_t>(n_tokens * rows), -7.0f), y_avx512 = y;
      (*amx)->matmul(m, a.bytes.data(), a.row_bytes, y.data(), rows, n_tokens, r0, rows);
      avx512.matmul(m, a.bytes.data(), a.row_bytes, y_avx512.data(), rows, n_tokens, r0, rows);
      for (size_t i = 0; i < y.size(); ++i) {
        ASSERT_EQ(y[i], y_avx512[i]) << DTypeName(type) << " k=" << k << " rows=" << rows
                                     << " r0=" << r0 << " tokens=" << n_tokens << " i=" << i;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(AllTypes, MatMulTest,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0,
                                           DType::kQ4_0, DType::kQ4_K, DType::kQ6_K, DType::kF16NM),
                         [](const auto& param_info) {
                           return std::string(DTypeName(param_info.param));
                         });

TEST(RmsNorm, EveryPathMatchesFormula) {
  std::mt19937 rng(3);
  for (Isa isa : SupportedIsas()) {
    const KernelTable& table = **KernelsFor(isa);
    for (int64_t n : {1, 7, 16, 64, 1001}) {
      std::vector<float> x = RandomVector(rng, n), w = RandomVector(rng, n);
      std::vector<float> y(static_cast<size_t>(n));
      table.rms_norm(x.data(), w.data(), y.data(), n, 1e-5f);
      double ss = 0.0;
      for (float v : x) ss += static_cast<double>(v) * v;
      double scale = 1.0 / std::sqrt(ss / static_cast<double>(n) + 1e-5);
      for (int64_t i = 0; i < n; ++i) {
        // Two f32 roundings of the product after an exact (double) mean square.
        EXPECT_NEAR(y[i], x[i] * scale * w[i], 4e-7 * std::fabs(x[i] * scale * w[i]) + 1e-30)
            << IsaName(isa) << " n=" << n;
      }
    }
  }
}

TEST(Rope, RotatesEachPairByItsAngle) {
  const int64_t n_heads = 3, head_dim = 10, rot_dim = 8;
  std::mt19937 rng(5);
  std::vector<float> x = RandomVector(rng, n_heads * head_dim);
  std::vector<float> cos(4), sin(4);
  for (int i = 0; i < 4; ++i) {
    double angle = 0.3 * (i + 1);
    cos[i] = static_cast<float>(std::cos(angle));
    sin[i] = static_cast<float>(std::sin(angle));
  }
  for (RopePairing pairing : {RopePairing::kAdjacent, RopePairing::kHalf}) {
    std::vector<float> y = x;
    Kernels().rope(y.data(), n_heads, head_dim, rot_dim, cos.data(), sin.data(), pairing);
    for (int64_t h = 0; h < n_heads; ++h) {
      for (int64_t i = 0; i < rot_dim / 2; ++i) {
        int64_t a = pairing == RopePairing::kAdjacent ? 2 * i : i;
        int64_t b = pairing == RopePairing::kAdjacent ? 2 * i + 1 : i + rot_dim / 2;
        float x0 = x[h * head_dim + a], x1 = x[h * head_dim + b];
        EXPECT_FLOAT_EQ(y[h * head_dim + a], x0 * cos[i] - x1 * sin[i]);
        EXPECT_FLOAT_EQ(y[h * head_dim + b], x0 * sin[i] + x1 * cos[i]);
      }
      // Dimensions past rot_dim are not rotated.
      for (int64_t d = rot_dim; d < head_dim; ++d)
        EXPECT_EQ(y[h * head_dim + d], x[h * head_dim + d]);
    }
  }
}

TEST(Softmax, EveryPathIsStableForLargeInputs) {
  for (Isa isa : SupportedIsas()) {
    std::vector<float> x = {1000.0f, 1001.0f, 999.0f, -1e30f};
    (*KernelsFor(isa))->softmax(x.data(), static_cast<int64_t>(x.size()));
    double e0 = std::exp(-1.0), e1 = 1.0, e2 = std::exp(-2.0), sum = e0 + e1 + e2;
    EXPECT_NEAR(x[0], e0 / sum, 1e-7) << IsaName(isa);
    EXPECT_NEAR(x[1], e1 / sum, 1e-7) << IsaName(isa);
    EXPECT_NEAR(x[2], e2 / sum, 1e-7) << IsaName(isa);
    EXPECT_EQ(x[3], 0.0f) << IsaName(isa);
  }
}

// Vector exp is within 2 ulp; a normalized probability carries a few ulp more.
TEST(Softmax, EveryPathMatchesTheReferenceOnOddSizes) {
  std::mt19937 rng(13);
  for (Isa isa : SupportedIsas()) {
    for (int64_t n : {1, 5, 16, 17, 100, 1025}) {
      std::vector<float> x = RandomVector(rng, n, 10.0f), ref_x = x;
      (*KernelsFor(isa))->softmax(x.data(), n);
      ref::Softmax(ref_x.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        EXPECT_NEAR(x[i], ref_x[i], 8 * 1.2e-7 * ref_x[i] + 1e-30) << IsaName(isa) << " n=" << n;
      }
    }
  }
}

TEST(SiluGate, EveryPathMatchesFormulaOnOddSizes) {
  std::mt19937 rng(17);
  for (Isa isa : SupportedIsas()) {
    for (int64_t n : {1, 4, 16, 31, 1000}) {
      std::vector<float> g = RandomVector(rng, n, 5.0f), u = RandomVector(rng, n);
      std::vector<float> out(static_cast<size_t>(n));
      (*KernelsFor(isa))->silu_gate(g.data(), u.data(), out.data(), n);
      for (int64_t i = 0; i < n; ++i) {
        double expected = g[i] / (1.0 + std::exp(-static_cast<double>(g[i]))) * u[i];
        // exp within 2 ulp, then an add, a divide and a multiply: under 6 ulp in all.
        EXPECT_NEAR(out[i], expected, 6 * 1.2e-7 * std::fabs(expected) + 1e-30)
            << IsaName(isa) << " n=" << n;
      }
    }
  }
}

// Every path converts KV-cache rows exactly as RowFromF32 does, on odd lengths (whole blocks for
// q8_0) and on values at the edges of f16: overflow to inf, subnormals, zeros of both signs.
TEST(FromF32, EveryPathMatchesRowFromF32Exactly) {
  std::mt19937 rng(19);
  for (Isa isa : SupportedIsas()) {
    const KernelTable& table = **KernelsFor(isa);
    for (DType type : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0}) {
      for (int64_t n : {1, 7, 32, 33, 100, 1024}) {
        if (!IsRowLengthValid(type, n)) continue;
        std::vector<float> x = RandomVector(rng, n, 3.0f);
        const float edges[] = {70000.0f, -65520.0f, 65504.0f, 1e-6f, -3e-8f, 0.0f, -0.0f, 1e-40f};
        for (size_t i = 0; i < std::size(edges) && i < x.size(); ++i)
          x[i * 3 % x.size()] = edges[i];
        std::vector<uint8_t> out(RowBytes(type, n), 0xAB), expected(RowBytes(type, n), 0xCD);
        table.from_f32(type, x.data(), out.data(), n);
        RowFromF32(type, x.data(), expected.data(), n);
        EXPECT_EQ(out, expected) << IsaName(isa) << " " << DTypeName(type) << " n=" << n;
      }
    }
  }
}

// Reference attention on f32 keys and values against a double-precision softmax-weighted sum,
// for grouped query heads reading one interleaved cache row layout.
TEST(Attention, ReferenceMatchesNaiveSoftmaxWeightedSum) {
  std::mt19937 rng(9);
  for (int64_t n_kv : {1, 2, 17}) {
    const int64_t head_dim = 12, group = 3, row_floats = 36;  // Three heads per cache row.
    std::vector<float> q = RandomVector(rng, group * head_dim);
    std::vector<float> k = RandomVector(rng, n_kv * row_floats);
    std::vector<float> v = RandomVector(rng, n_kv * row_floats);
    std::vector<float> out(static_cast<size_t>(group * head_dim));
    std::vector<float> scratch(static_cast<size_t>(AttentionScratchFloats(group, head_dim, n_kv)));
    AttentionArgs a;
    a.q = q.data();
    a.group = group;
    a.head_dim = head_dim;
    a.k = k.data() + 12;
    a.v = v.data() + 12;
    a.k_stride = a.v_stride = row_floats * sizeof(float);
    a.n_kv = n_kv;
    a.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
    a.out = out.data();
    a.scratch = scratch.data();
    ref::Attention(a);
    for (int64_t g = 0; g < group; ++g) {
      std::vector<double> p(static_cast<size_t>(n_kv));
      double max = -1e300, sum = 0.0;
      for (int64_t j = 0; j < n_kv; ++j) {
        double dot = 0.0;
        for (int64_t d = 0; d < head_dim; ++d) {
          dot += q[g * head_dim + d] * k[j * row_floats + 12 + d];
        }
        p[j] = dot * a.scale;
        max = std::max(max, p[j]);
      }
      for (double& e : p) sum += (e = std::exp(e - max));
      for (int64_t d = 0; d < head_dim; ++d) {
        double expected = 0.0;
        for (int64_t j = 0; j < n_kv; ++j) expected += p[j] / sum * v[j * row_floats + 12 + d];
        EXPECT_NEAR(out[g * head_dim + d], expected, 1e-5);
      }
    }
  }
}

}  // namespace
}  // namespace slimlm::kernels
