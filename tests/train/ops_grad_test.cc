// Every backward pass against central finite differences of its forward pass, in double
// precision: for a loss L = sum(y * R) with R fixed and random, dL/dy = R, and each input's
// gradient from the backward pass must match (L(x + h e_i) - L(x - h e_i)) / 2h. With h = 1e-5
// the truncation error is O(h^2) ~ 1e-10 and the rounding error ~ 1e-16 |L| / h ~ 1e-10, so a
// relative tolerance of 1e-6 catches any wrong term.
#include "slimlm/train/ops.h"

#include <cmath>
#include <functional>
#include <random>
#include <vector>

#include <fmt/core.h>
#include <gtest/gtest.h>

namespace slimlm::train {
namespace {

using Vec = std::vector<double>;

Vec Random(std::mt19937& rng, size_t n, double scale = 1.0) {
  std::normal_distribution<double> dist(0.0, scale);
  Vec v(n);
  for (double& x : v) x = dist(rng);
  return v;
}

double Sum(const Vec& y, const Vec& r) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * r[i];
  return s;
}

// Compares `analytic` with the finite-difference gradient of loss() with respect to *x.
void ExpectGradient(const std::function<double()>& loss, Vec* x, const Vec& analytic,
                    const char* what) {
  ASSERT_EQ(x->size(), analytic.size()) << what;
  constexpr double h = 1e-5;
  for (size_t i = 0; i < x->size(); ++i) {
    const double saved = (*x)[i];
    (*x)[i] = saved + h;
    const double up = loss();
    (*x)[i] = saved - h;
    const double down = loss();
    (*x)[i] = saved;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(analytic[i], numeric, 1e-6 * std::max(1.0, std::fabs(numeric)))
        << what << "[" << i << "]";
  }
}

TEST(TrainOps, RmsNormBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(1);
  const int64_t n = 3, d = 5;
  Vec x = Random(rng, n * d), w = Random(rng, d), r = Random(rng, n * d);
  auto loss = [&] {
    Vec y(n * d), inv(n);
    RmsNormForward(x.data(), w.data(), y.data(), inv.data(), n, d, 1e-5);
    return Sum(y, r);
  };
  Vec y(n * d), inv(n), dx(n * d), dw(d, 0.0);
  RmsNormForward(x.data(), w.data(), y.data(), inv.data(), n, d, 1e-5);
  RmsNormBackward(x.data(), w.data(), inv.data(), r.data(), dx.data(), dw.data(), n, d);
  ExpectGradient(loss, &x, dx, "dx");
  ExpectGradient(loss, &w, dw, "dw");
}

TEST(TrainOps, LinearBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(2);
  const int64_t n = 3, in = 4, out = 6;
  Vec x = Random(rng, n * in), w = Random(rng, out * in), r = Random(rng, n * out);
  auto loss = [&] {
    Vec y(n * out);
    LinearForward(x.data(), w.data(), y.data(), n, in, out);
    return Sum(y, r);
  };
  Vec dx(n * in), dw(out * in, 0.0);
  LinearBackward(x.data(), w.data(), r.data(), dx.data(), dw.data(), n, in, out);
  ExpectGradient(loss, &x, dx, "dx");
  ExpectGradient(loss, &w, dw, "dw");
  // Parameter gradients accumulate.
  LinearBackward(x.data(), w.data(), r.data(), static_cast<double*>(nullptr), dw.data(), n, in,
                 out);
  Vec twice = dw;
  for (double& g : twice) g /= 2;
  ExpectGradient(loss, &w, twice, "dw accumulated twice, halved");
}

TEST(TrainOps, RopeBackwardIsTheInverseRotation) {
  std::mt19937 rng(3);
  const int64_t n = 3, heads = 2, head_dim = 6, rot_dim = 4;
  Vec x = Random(rng, n * heads * head_dim), r = Random(rng, x.size());
  auto loss = [&] {
    Vec y = x;
    Rope(y.data(), n, heads, head_dim, rot_dim, 10000.0, 5, false);
    return Sum(y, r);
  };
  Vec dx = r;
  Rope(dx.data(), n, heads, head_dim, rot_dim, 10000.0, 5, true);
  ExpectGradient(loss, &x, dx, "dx");
  // Rotation then inverse rotation is the identity.
  Vec y = x;
  Rope(y.data(), n, heads, head_dim, rot_dim, 10000.0, 5, false);
  Rope(y.data(), n, heads, head_dim, rot_dim, 10000.0, 5, true);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_NEAR(y[i], x[i], 1e-12);
}

TEST(TrainOps, AttentionBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(4);
  const int64_t n = 4, heads = 4, kv = 2, hd = 3;
  Vec q = Random(rng, n * heads * hd), k = Random(rng, n * kv * hd), v = Random(rng, n * kv * hd);
  Vec r = Random(rng, n * heads * hd);
  auto loss = [&] {
    Vec out(n * heads * hd), probs(heads * n * n);
    AttentionForward(q.data(), k.data(), v.data(), out.data(), probs.data(), n, heads, kv, hd);
    return Sum(out, r);
  };
  Vec out(n * heads * hd), probs(heads * n * n);
  AttentionForward(q.data(), k.data(), v.data(), out.data(), probs.data(), n, heads, kv, hd);
  // Causal: the first position attends to itself only, so its output is its value.
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t i = 0; i < hd; ++i) EXPECT_NEAR(out[h * hd + i], v[(h / 2) * hd + i], 1e-12);
  }
  Vec dq(q.size()), dk(k.size()), dv(v.size());
  AttentionBackward(q.data(), k.data(), v.data(), probs.data(), r.data(), dq.data(), dk.data(),
                    dv.data(), n, heads, kv, hd);
  ExpectGradient(loss, &q, dq, "dq");
  ExpectGradient(loss, &k, dk, "dk");
  ExpectGradient(loss, &v, dv, "dv");
}

TEST(TrainOps, SiluGateBackwardMatchesFiniteDifferences) {
  std::mt19937 rng(5);
  const int64_t m = 9;
  Vec g = Random(rng, m, 3.0), u = Random(rng, m), r = Random(rng, m);
  auto loss = [&] {
    Vec out(m);
    SiluGateForward(g.data(), u.data(), out.data(), m);
    return Sum(out, r);
  };
  Vec dg(m), du(m);
  SiluGateBackward(g.data(), u.data(), r.data(), dg.data(), du.data(), m);
  ExpectGradient(loss, &g, dg, "dg");
  ExpectGradient(loss, &u, du, "du");
}

TEST(TrainOps, CrossEntropyGradientAndValue) {
  std::mt19937 rng(6);
  const int64_t n = 3, vocab = 5;
  Vec logits = Random(rng, n * vocab, 2.0);
  const std::vector<int32_t> targets = {2, -1, 4};  // The middle position is not scored.
  auto loss = [&] {
    return CrossEntropy(logits.data(), targets.data(), static_cast<double*>(nullptr), n, vocab);
  };
  Vec dl(n * vocab);
  const double value = CrossEntropy(logits.data(), targets.data(), dl.data(), n, vocab);
  ExpectGradient(loss, &logits, dl, "dlogits");
  // The value is the mean over the two scored positions of -log softmax.
  double expected = 0;
  for (int64_t t : {0, 2}) {
    double z = 0;
    for (int64_t i = 0; i < vocab; ++i) z += std::exp(logits[t * vocab + i]);
    expected += std::log(z) - logits[t * vocab + targets[t]];
  }
  EXPECT_NEAR(value, expected / 2, 1e-12);
  for (int64_t i = 0; i < vocab; ++i) EXPECT_EQ(dl[vocab + i], 0.0);
}

// The teacher of the DistillKl tests: two positions over a vocabulary of 6, top 3 given.
struct SparseTeacher {
  std::vector<int32_t> ids = {4, 0, 2, 1, 5, 3};
  Vec logp = {std::log(0.5), std::log(0.3), std::log(0.1),
              std::log(0.7), std::log(0.2), std::log(0.05)};
};

TEST(TrainOps, DistillKlGradientForEveryMix) {
  std::mt19937 rng(7);
  const int64_t n = 2, vocab = 6, k = 3;
  SparseTeacher teacher;
  for (double temperature : {1.0, 2.0}) {
    for (double reverse : {0.0, 0.5, 1.0}) {
      Vec logits = Random(rng, n * vocab, 2.0);
      auto loss = [&] {
        return DistillKl(logits.data(), teacher.ids.data(), teacher.logp.data(), k,
                         static_cast<double*>(nullptr), n, vocab, temperature, reverse);
      };
      Vec dl(n * vocab);
      DistillKl(logits.data(), teacher.ids.data(), teacher.logp.data(), k, dl.data(), n, vocab,
                temperature, reverse);
      SCOPED_TRACE(fmt::format("temperature {} reverse weight {}", temperature, reverse));
      ExpectGradient(loss, &logits, dl, "dlogits");
    }
  }
}

TEST(TrainOps, DistillKlValue) {
  const int64_t n = 2, vocab = 6, k = 3;
  SparseTeacher teacher;
  // The teacher's full distribution at temperature 1: the top 3, the rest spread over 3 tokens.
  const Vec p = {
      0.3,      0.1 / 3, 0.1,      0.1 / 3, 0.5,      0.1 / 3,  // position 0: 0.1 left over
      0.05 / 3, 0.7,     0.05 / 3, 0.05,    0.05 / 3, 0.2};
  // A student equal to the teacher has zero divergence either way.
  Vec logits(n * vocab);
  for (size_t i = 0; i < p.size(); ++i) logits[i] = std::log(p[i]) + 3.0;  // any shift
  for (double reverse : {0.0, 1.0}) {
    EXPECT_NEAR(DistillKl(logits.data(), teacher.ids.data(), teacher.logp.data(), k,
                          static_cast<double*>(nullptr), n, vocab, 1.0, reverse),
                0.0, 1e-12);
  }
  // At temperature 2 the teacher's whole distribution (top 3 and even tail) is raised to 1/2
  // and normalized; a student whose logits / 2 give that distribution matches it.
  Vec tempered = p;
  for (int64_t t = 0; t < n; ++t) {
    double sum = 0;
    for (int64_t i = 0; i < vocab; ++i) sum += std::sqrt(p[t * vocab + i]);
    for (int64_t i = 0; i < vocab; ++i) tempered[t * vocab + i] = std::sqrt(p[t * vocab + i]) / sum;
  }
  for (size_t i = 0; i < p.size(); ++i) logits[i] = 2 * std::log(tempered[i]) - 1.0;
  for (double reverse : {0.0, 1.0}) {
    EXPECT_NEAR(DistillKl(logits.data(), teacher.ids.data(), teacher.logp.data(), k,
                          static_cast<double*>(nullptr), n, vocab, 2.0, reverse),
                0.0, 1e-12);
  }
  // A uniform student: KL(p || u) = log V - H(p), KL(u || p) = -log V - mean log p.
  std::fill(logits.begin(), logits.end(), 0.0);
  double forward = 0, reverse = 0;
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t i = 0; i < vocab; ++i) {
      const double pi = p[t * vocab + i];
      forward += pi * std::log(pi * vocab);
      reverse += std::log(1.0 / (vocab * pi)) / vocab;
    }
  }
  EXPECT_NEAR(DistillKl(logits.data(), teacher.ids.data(), teacher.logp.data(), k,
                        static_cast<double*>(nullptr), n, vocab, 1.0, 0.0),
              forward / n, 1e-12);
  EXPECT_NEAR(DistillKl(logits.data(), teacher.ids.data(), teacher.logp.data(), k,
                        static_cast<double*>(nullptr), n, vocab, 1.0, 1.0),
              reverse / n, 1e-12);
  EXPECT_NEAR(DistillKl(logits.data(), teacher.ids.data(), teacher.logp.data(), k,
                        static_cast<double*>(nullptr), n, vocab, 1.0, 0.25),
              (0.75 * forward + 0.25 * reverse) / n, 1e-12);
}

}  // namespace
}  // namespace slimlm::train
