// Every attention kernel (reference flash, AVX2, AVX-512 and NEON, plain and flash) against the
// reference ref::Attention on random shapes, cache layouts and key/value types, with tolerances
// derived from the float epsilon; their scratch use; and the vector exp they share.
#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "kernels/ref/ref_kernels.h"
#include "slimlm/core/cpu_features.h"
#include "slimlm/kernels/kernels.h"
#include "slimlm/tensor/quant_blocks.h"
#if defined(__x86_64__)
#include "kernels/x86/attention_x86.h"
#endif
#if defined(__aarch64__)
#include "kernels/arm/kernels_arm.h"
#endif

namespace slimlm::kernels {
namespace {

constexpr float kSentinel = 12345.5f;

struct Path {
  std::string name;
  void (*fn)(const AttentionArgs&);
  bool flash;  // Scratch must not grow with n_kv.
  bool (*supported)();
};

// gtest prints a parameter with this; the default would dump its bytes.
void PrintTo(const Path& path, std::ostream* os) { *os << path.name; }

bool Always() { return true; }
#if defined(__x86_64__)
bool HasAvx2() {
  const CpuFeatures& f = GetCpuFeatures();
  return f.avx2 && f.fma && f.f16c;
}
bool HasAvx512() {
  const CpuFeatures& f = GetCpuFeatures();
  return f.avx512f && f.avx512bw && f.avx512vl && f.avx512dq && f.fma && f.f16c;
}
#endif
#if defined(__aarch64__)
bool HasNeon() {
  const CpuFeatures& f = GetCpuFeatures();
  return f.neon && f.dotprod;
}
#endif

std::vector<Path> Paths() {
  std::vector<Path> paths = {{"RefFlash", ref::FlashAttention, true, Always}};
#if defined(__x86_64__)
  paths.push_back({"Avx2", avx2::Attention, false, HasAvx2});
  paths.push_back({"Avx2Flash", avx2::FlashAttention, true, HasAvx2});
  paths.push_back({"Avx512", avx512::Attention, false, HasAvx512});
  paths.push_back({"Avx512Flash", avx512::FlashAttention, true, HasAvx512});
#endif
#if defined(__aarch64__)
  paths.push_back({"Neon", neon::Attention, false, HasNeon});
  paths.push_back({"NeonFlash", neon::FlashAttention, true, HasNeon});
#endif
  return paths;
}

// One attention problem: the keys and values of one head inside cache rows that hold
// three heads (this one the middle one, the others NaN), and query heads scaled so that the largest
// |score| is `max_score`.
struct Problem {
  int64_t group, head_dim, n_kv;
  DType k_type, v_type;
  std::vector<float> q;
  std::vector<uint8_t> k, v;
  size_t k_stride, v_stride, k_offset, v_offset;
  std::vector<float> k_values, v_values;  // (n_kv, head_dim): the rows widened to f32
  float scale;
};

Problem MakeProblem(std::mt19937& rng, int64_t group, int64_t head_dim, int64_t n_kv, DType k_type,
                    DType v_type, float max_score, bool increasing = false) {
  constexpr int64_t kHeadsPerRow = 3, kHead = 1;
  Problem p{group, head_dim, n_kv, k_type, v_type};
  std::uniform_real_distribution<float> uniform(-1.0f, 1.0f);
  p.scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const size_t k_head = RowBytes(k_type, head_dim), v_head = RowBytes(v_type, head_dim);
  p.k_stride = kHeadsPerRow * k_head;
  p.v_stride = kHeadsPerRow * v_head;
  p.k_offset = kHead * k_head;
  p.v_offset = kHead * v_head;
  // The other heads of each row are NaN (0xff bytes in every type): reading them shows.
  p.k.assign(p.k_stride * n_kv, 0xff);
  p.v.assign(p.v_stride * n_kv, 0xff);
  std::vector<float> row(static_cast<size_t>(head_dim));
  for (int64_t t = 0; t < n_kv; ++t) {
    for (float& x : row) x = uniform(rng);
    RowFromF32(k_type, row.data(), p.k.data() + t * p.k_stride + p.k_offset, head_dim);
    for (float& x : row) x = uniform(rng);
    RowFromF32(v_type, row.data(), p.v.data() + t * p.v_stride + p.v_offset, head_dim);
  }
  p.q.resize(static_cast<size_t>(group * head_dim));
  for (float& x : p.q) x = uniform(rng);
  p.k_values.resize(static_cast<size_t>(n_kv * head_dim));
  p.v_values.resize(static_cast<size_t>(n_kv * head_dim));
  for (int64_t t = 0; t < n_kv; ++t) {
    RowToF32(k_type, p.k.data() + t * p.k_stride + p.k_offset, &p.k_values[t * head_dim], head_dim);
    RowToF32(v_type, p.v.data() + t * p.v_stride + p.v_offset, &p.v_values[t * head_dim], head_dim);
  }
  float largest = 0.0f;
  for (int64_t g = 0; g < group; ++g) {
    for (int64_t t = 0; t < n_kv; ++t) {
      double dot = 0.0;
      for (int64_t d = 0; d < head_dim; ++d)
        dot += p.q[g * head_dim + d] * p.k_values[t * head_dim + d];
      largest = std::max(largest, static_cast<float>(std::fabs(dot) * p.scale));
    }
  }
  if (largest > 0.0f) {
    for (float& x : p.q) x *= max_score / largest;
  }
  if (increasing) {
    // Scores of head 0 rise along the positions: the running maximum grows at every tile, so
    // the flash kernels rescale their output every time.
    std::vector<std::pair<double, int64_t>> order;
    for (int64_t t = 0; t < n_kv; ++t) {
      double dot = 0.0;
      for (int64_t d = 0; d < head_dim; ++d) dot += p.q[d] * p.k_values[t * head_dim + d];
      order.push_back({dot, t});
    }
    std::sort(order.begin(), order.end());
    std::vector<uint8_t> k(p.k.size());
    std::vector<float> k_values(p.k_values.size());
    for (int64_t t = 0; t < n_kv; ++t) {
      const int64_t from = order[t].second;
      std::memcpy(&k[t * p.k_stride], &p.k[from * p.k_stride], p.k_stride);
      std::memcpy(&k_values[t * head_dim], &p.k_values[from * head_dim], head_dim * sizeof(float));
    }
    p.k.swap(k);
    p.k_values.swap(k_values);
  }
  return p;
}

AttentionArgs Args(const Problem& p, float* out, float* scratch) {
  AttentionArgs a;
  a.q = p.q.data();
  a.group = p.group;
  a.head_dim = p.head_dim;
  a.k = p.k.data() + p.k_offset;
  a.v = p.v.data() + p.v_offset;
  a.k_type = p.k_type;
  a.v_type = p.v_type;
  a.k_stride = p.k_stride;
  a.v_stride = p.v_stride;
  a.n_kv = p.n_kv;
  a.scale = p.scale;
  a.out = out;
  a.scratch = scratch;
  return a;
}

// How far two correct implementations may differ, for outputs of `p`. eps is FLT_EPSILON, twice
// the unit roundoff u; each term covers both implementations.
//  - Scores: a dot product of head_dim terms, then the scale, is within (head_dim + 1) u A of
//    exact in any summation order, where A = max over heads and positions of scale * sum |q k|.
//    Scores that move by at most delta move each normalized softmax weight by a factor within
//    exp(+-2 delta), so the output (a convex combination of value rows) by 2 delta max|v|:
//    with delta = (head_dim + 1) eps A for the two implementations, 2 (head_dim + 1) eps A.
//  - Sums over positions: the weighted sum of values and the normalizer are each within n_kv u
//    of exact relative to max|v|: 2 n_kv u per implementation, 2 n_kv eps for both.
//  - exp: within 2 ulp (the vector exp, tested below; std::exp within 1) plus u/e from rounding its
//    argument; weights off by a factor 1 +- 3 eps per implementation move the output by 6 eps
//    each: 12 eps.
float Tolerance(const Problem& p) {
  double a_max = 0.0, v_max = 0.0;
  for (int64_t g = 0; g < p.group; ++g) {
    for (int64_t t = 0; t < p.n_kv; ++t) {
      double sum = 0.0;
      for (int64_t d = 0; d < p.head_dim; ++d) {
        sum += std::fabs(p.q[g * p.head_dim + d] * p.k_values[t * p.head_dim + d]);
      }
      a_max = std::max(a_max, sum * p.scale);
    }
  }
  for (float x : p.v_values) v_max = std::max(v_max, static_cast<double>(std::fabs(x)));
  const double terms = 2.0 * (p.head_dim + 1) * a_max + 2.0 * p.n_kv + 12.0;
  return static_cast<float>(terms * FLT_EPSILON * v_max);
}

// Runs `path` and the reference on p; expects outputs within Tolerance(p) and the scratch past
// the path's allowance untouched. The scratch starts as NaN, so that reading it before writing
// it shows in the output.
void ExpectMatchesReference(const Path& path, const Problem& p) {
  SCOPED_TRACE(testing::Message() << path.name << " group " << p.group << " head_dim " << p.head_dim
                                  << " n_kv " << p.n_kv << " k " << DTypeName(p.k_type) << " v "
                                  << DTypeName(p.v_type));
  const size_t n_out = static_cast<size_t>(p.group * p.head_dim);
  const size_t limit =
      static_cast<size_t>(AttentionScratchFloats(p.group, p.head_dim, path.flash ? 0 : p.n_kv));
  const size_t full = static_cast<size_t>(AttentionScratchFloats(p.group, p.head_dim, p.n_kv));
  std::vector<float> ref_scratch(full), ref_out(n_out, std::nanf(""));
  ref::Attention(Args(p, ref_out.data(), ref_scratch.data()));

  std::vector<float> scratch(std::max(full, limit) + 64, kSentinel), out(n_out, std::nanf(""));
  std::fill(scratch.begin(), scratch.begin() + limit, std::nanf(""));
  path.fn(Args(p, out.data(), scratch.data()));

  const float tolerance = Tolerance(p);
  int failures = 0;
  for (size_t i = 0; i < n_out && failures < 5; ++i) {
    if (!(std::fabs(out[i] - ref_out[i]) <= tolerance)) {
      ADD_FAILURE() << "out[" << i << "] = " << out[i] << ", reference " << ref_out[i]
                    << ", tolerance " << tolerance;
      ++failures;
    }
  }
  for (size_t i = limit; i < scratch.size(); ++i) {
    if (scratch[i] != kSentinel) {
      ADD_FAILURE() << "scratch[" << i << "] written; the allowance is " << limit << " floats";
      break;
    }
  }
}

bool TypeFits(DType type, int64_t head_dim) { return IsRowLengthValid(type, head_dim); }

class AttentionTest : public testing::TestWithParam<Path> {
 protected:
  void SetUp() override {
    if (!GetParam().supported()) GTEST_SKIP() << GetParam().name << " not supported by this CPU";
  }
};

// Shapes with odd sizes and tails, all nine key/value type pairs, keys and values of one head
// interleaved with others in the cache rows, and scores of normal size or up to +-80.
TEST_P(AttentionTest, MatchesReference) {
  std::mt19937 rng(42);
  const DType types[] = {DType::kF32, DType::kF16, DType::kQ8_0};
  int index = 0;
  for (int64_t group : {1, 2, 3, 8}) {
    for (int64_t head_dim : {8, 12, 16, 20, 32, 64, 96, 128}) {
      for (int64_t n_kv : {1, 2, 7, 63, 64, 65, 300, 1031}) {
        for (DType k_type : types) {
          for (DType v_type : types) {
            if (!TypeFits(k_type, head_dim) || !TypeFits(v_type, head_dim)) continue;
            const float max_score = (index++ % 2 == 0) ? 4.0f : 80.0f;
            ExpectMatchesReference(
                GetParam(), MakeProblem(rng, group, head_dim, n_kv, k_type, v_type, max_score));
            if (HasFailure()) return;  // One failing problem says enough.
          }
        }
      }
    }
  }
}

// More heads than one pass of the fast kernels takes, and head sizes of other models.
TEST_P(AttentionTest, MatchesReferenceForLargeGroupsAndOddHeads) {
  std::mt19937 rng(7);
  for (int64_t group : {5, 12, 16}) {
    for (int64_t head_dim : {1, 3, 80, 160, 256}) {
      for (DType type : {DType::kF32, DType::kF16, DType::kQ8_0}) {
        if (!TypeFits(type, head_dim)) continue;
        ExpectMatchesReference(GetParam(),
                               MakeProblem(rng, group, head_dim, 300, type, type, 30.0f));
        if (HasFailure()) return;
      }
    }
  }
}

// A long context, with the scores of one head rising along the positions (the online softmax
// rescales at every tile) and scores up to 80.
TEST_P(AttentionTest, MatchesReferenceAtLongContext) {
  std::mt19937 rng(3);
  for (DType type : {DType::kF16, DType::kQ8_0, DType::kF32}) {
    for (bool increasing : {false, true}) {
      ExpectMatchesReference(GetParam(),
                             MakeProblem(rng, 8, 64, 4096, type, type, 80.0f, increasing));
    }
  }
}

// No positions: the output is zero, as the reference gives.
TEST_P(AttentionTest, ZeroPositionsGiveZero) {
  std::mt19937 rng(5);
  Problem p = MakeProblem(rng, 2, 16, 1, DType::kF16, DType::kF16, 1.0f);
  p.n_kv = 0;
  std::vector<float> scratch(static_cast<size_t>(AttentionScratchFloats(2, 16, 0)));
  std::vector<float> out(32, std::nanf(""));
  GetParam().fn(Args(p, out.data(), scratch.data()));
  for (float x : out) EXPECT_EQ(x, 0.0f);
}

// A paged copy of a problem's cache: its positions in blocks of block_rows rows, placed in
// shuffled blocks of a pool twice as large whose other rows are NaN.
struct PagedCache {
  std::vector<uint8_t> k, v;
  std::vector<int32_t> blocks;
  int64_t block_rows;
};

PagedCache MakePaged(std::mt19937& rng, const Problem& p, int64_t block_rows) {
  PagedCache c;
  c.block_rows = block_rows;
  const int64_t n_blocks = (p.n_kv + block_rows - 1) / block_rows;
  std::vector<int32_t> pool(static_cast<size_t>(2 * n_blocks + 1));
  std::iota(pool.begin(), pool.end(), 0);
  std::shuffle(pool.begin(), pool.end(), rng);
  c.blocks.assign(pool.begin(), pool.begin() + n_blocks);
  const size_t rows = pool.size() * static_cast<size_t>(block_rows);
  c.k.assign(rows * p.k_stride, 0xff);
  c.v.assign(rows * p.v_stride, 0xff);
  for (int64_t t = 0; t < p.n_kv; ++t) {
    const size_t row = static_cast<size_t>(c.blocks[t / block_rows]) * block_rows + t % block_rows;
    std::memcpy(&c.k[row * p.k_stride], &p.k[t * p.k_stride], p.k_stride);
    std::memcpy(&c.v[row * p.v_stride], &p.v[t * p.v_stride], p.v_stride);
  }
  return c;
}

AttentionArgs PagedArgs(const Problem& p, const PagedCache& c, float* out, float* scratch) {
  AttentionArgs a = Args(p, out, scratch);
  a.k = c.k.data() + p.k_offset;
  a.v = c.v.data() + p.v_offset;
  a.blocks = c.blocks.data();
  a.block_rows = c.block_rows;
  return a;
}

// A paged cache gives what the same rows in one piece give: exactly so for the reference (it
// only looks rows up), within the tolerance for the tiled paths (their tiles span blocks, or
// restart at each block whose size is not a multiple of their vectors); the pool's other rows,
// NaN, are never read, and the scratch stays within the allowance.
TEST_P(AttentionTest, PagedCacheMatchesContiguous) {
  std::mt19937 rng(11);
  for (int64_t group : {1, 4}) {
    for (int64_t block_rows : {1, 5, 8, 16, 24, 32, 48, 64, 100}) {
      for (int64_t n_kv : {1, 15, 16, 17, 100, 300, 513}) {
        for (DType type : {DType::kF16, DType::kQ8_0, DType::kF32}) {
          const Problem p = MakeProblem(rng, group, 64, n_kv, type, type, 30.0f);
          const PagedCache c = MakePaged(rng, p, block_rows);
          SCOPED_TRACE(testing::Message() << "group " << group << " block_rows " << block_rows
                                          << " n_kv " << n_kv << " " << DTypeName(type));
          const size_t n_out = static_cast<size_t>(group * 64);
          const size_t full = static_cast<size_t>(AttentionScratchFloats(group, 64, n_kv));
          const size_t limit =
              static_cast<size_t>(AttentionScratchFloats(group, 64, GetParam().flash ? 0 : n_kv));
          std::vector<float> scratch(full), want(n_out), ref_paged(n_out), got(n_out);
          ref::Attention(Args(p, want.data(), scratch.data()));
          ref::Attention(PagedArgs(p, c, ref_paged.data(), scratch.data()));
          EXPECT_EQ(ref_paged, want);
          std::vector<float> path_scratch(limit + 64, kSentinel);
          std::fill(path_scratch.begin(), path_scratch.begin() + limit, std::nanf(""));
          GetParam().fn(PagedArgs(p, c, got.data(), path_scratch.data()));
          const float tolerance = Tolerance(p);
          for (size_t i = 0; i < got.size(); ++i) {
            ASSERT_LE(std::fabs(got[i] - want[i]), tolerance) << "out[" << i << "]";
          }
          for (size_t i = limit; i < path_scratch.size(); ++i) {
            ASSERT_EQ(path_scratch[i], kSentinel) << "scratch[" << i << "] past the allowance";
          }
        }
      }
    }
  }
}

std::vector<Path> AllPaths() { return Paths(); }

INSTANTIATE_TEST_SUITE_P(Paths, AttentionTest, testing::ValuesIn(AllPaths()),
                         [](const testing::TestParamInfo<Path>& param) {
                           return param.param.name;
                         });

#if defined(__x86_64__) || defined(__aarch64__)
// Float bits as an integer line on which adjacent floats differ by 1 (negative ones below zero).
int64_t Ordered(float x) {
  int32_t i;
  std::memcpy(&i, &x, sizeof(i));
  return i < 0 ? -static_cast<int64_t>(i & 0x7fffffff) : i;
}

// The vector exp against the correctly rounded exp, over every 997th float from -110 to 90 and
// the special values.
void ExpectExpAccurate(void (*exp_row)(const float*, float*, int64_t)) {
  std::vector<float> x;
  for (int64_t i = Ordered(-110.0f); i <= Ordered(90.0f); i += 997) {
    const int32_t bits = i < 0 ? static_cast<int32_t>(-i) | static_cast<int32_t>(0x80000000u)
                               : static_cast<int32_t>(i);
    float f;
    std::memcpy(&f, &bits, sizeof(f));
    x.push_back(f);
  }
  const float inf = std::numeric_limits<float>::infinity();
  for (float f : {0.0f, -0.0f, 88.72f, 88.73f, -87.33f, -87.34f, -103.9f, -104.0f, inf, -inf}) {
    x.push_back(f);
  }
  std::vector<float> y(x.size() + 3);  // Odd length: the last vector is partial.
  exp_row(x.data(), y.data(), static_cast<int64_t>(x.size()));
  int64_t worst = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const float expected = static_cast<float>(std::exp(static_cast<double>(x[i])));
    const int64_t ulps = std::llabs(Ordered(y[i]) - Ordered(expected));
    worst = std::max(worst, ulps);
    if (ulps > 2) {
      ADD_FAILURE() << "exp(" << x[i] << ") = " << y[i] << ", expected " << expected;
      return;
    }
  }
  const float nan = std::nanf("");
  float nan_out;
  exp_row(&nan, &nan_out, 1);
  EXPECT_TRUE(std::isnan(nan_out));
  testing::Test::RecordProperty("max_ulps", static_cast<int>(worst));
  std::printf("max error %lld ulp over %zu inputs\n", static_cast<long long>(worst), x.size());
}
#endif

#if defined(__x86_64__)
TEST(AttentionExp, Avx2WithinTwoUlp) {
  if (!HasAvx2()) GTEST_SKIP() << "no AVX2";
  ExpectExpAccurate(avx2::ExpRow);
}

TEST(AttentionExp, Avx512WithinTwoUlp) {
  if (!HasAvx512()) GTEST_SKIP() << "no AVX-512";
  ExpectExpAccurate(avx512::ExpRow);
}
#endif

#if defined(__aarch64__)
TEST(AttentionExp, NeonWithinTwoUlp) {
  if (!HasNeon()) GTEST_SKIP() << "no NEON with dot product";
  ExpectExpAccurate(neon::ExpRow);
}
#endif

}  // namespace
}  // namespace slimlm::kernels
