// The GGUF layouts of q4_k and q6_k, checked on blocks built byte by byte from the format's
// description, and the error bounds of the reference quantizers.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {
namespace {

std::vector<float> Gaussian(uint32_t seed, int64_t n) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

// Scales and mins of 6 bits, the last four with high bits set, packed as GGUF describes: bytes
// 0-3 hold scales 0-3 and, in their top 2 bits, the high bits of scales 4-7; bytes 4-7 the same
// for the mins; bytes 8-11 the low 4 bits of scale (low nibble) and min (high nibble) 4-7.
TEST(Q4_K, UnpacksScalesAndMinsAndNibbleOrder) {
  const uint8_t sc[8] = {1, 2, 3, 4, 20, 33, 47, 63};
  const uint8_t m[8] = {5, 6, 7, 8, 17, 31, 48, 62};
  BlockQ4_K b{};
  for (int j = 0; j < 4; ++j) {
    b.scales[j] = static_cast<uint8_t>(sc[j] | ((sc[j + 4] >> 4) << 6));
    b.scales[j + 4] = static_cast<uint8_t>(m[j] | ((m[j + 4] >> 4) << 6));
    b.scales[j + 8] = static_cast<uint8_t>((sc[j + 4] & 15) | ((m[j + 4] & 15) << 4));
  }
  for (int j = 0; j < 8; ++j) {
    uint8_t s, mn;
    Q4_KScaleMin(b.scales, j, &s, &mn);
    EXPECT_EQ(s, sc[j]) << j;
    EXPECT_EQ(mn, m[j]) << j;
  }
  b.d = F32ToF16(0.5f);
  b.dmin = F32ToF16(0.25f);
  // Byte i of the 128: low nibble i % 16, high nibble 15 - i % 16.
  for (int i = 0; i < 128; ++i) b.qs[i] = static_cast<uint8_t>((i % 16) | ((15 - i % 16) << 4));
  std::vector<float> y(256);
  DequantizeRowQ4_KRef(&b, y.data(), 256);
  // Each 64 elements take 32 bytes: the first 32 elements their low nibbles, the next 32 their
  // high nibbles; sub-block j is elements 32 j .. 32 j + 31.
  for (int e = 0; e < 256; ++e) {
    const int byte = 32 * (e / 64) + e % 32;
    const int code = e % 64 < 32 ? byte % 16 : 15 - byte % 16;
    const int j = e / 32;
    EXPECT_EQ(y[e], 0.5f * sc[j] * code - 0.25f * m[j]) << e;
  }
}

// Element e = 128 h + 32 s + l: low 4 bits in ql[64 h + 32 (s % 2) + l] (low nibble for s < 2),
// high 2 bits at bits 2 s of qh[32 h + l], scale scales[e / 16], value d sc (code - 32).
TEST(Q6_K, DecodesCodesFromLowAndHighBits) {
  BlockQ6_K b{};
  auto code_of = [](int e) { return (e * 37 + 11) % 64; };
  for (int e = 0; e < 256; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32, code = code_of(e);
    b.ql[64 * h + 32 * (s % 2) + l] |= static_cast<uint8_t>((code & 15) << (s < 2 ? 0 : 4));
    b.qh[32 * h + l] |= static_cast<uint8_t>((code >> 4) << (2 * s));
  }
  for (int j = 0; j < 16; ++j) b.scales[j] = static_cast<int8_t>(j * 17 - 128);
  b.d = F32ToF16(0.125f);
  std::vector<float> y(256);
  DequantizeRowQ6_KRef(&b, y.data(), 256);
  for (int e = 0; e < 256; ++e) {
    EXPECT_EQ(y[e], 0.125f * b.scales[e / 16] * (code_of(e) - 32)) << e;
  }
  // And the byte offsets of the fields.
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&b);
  uint16_t d;
  std::memcpy(&d, bytes + 208, 2);
  EXPECT_EQ(d, b.d);
  EXPECT_EQ(static_cast<int8_t>(bytes[192]), -128);
}

// With the scales as stored, every weight inside its sub-block's range [-dmin m, -dmin m + 15 d
// sc] rounds to within half a step d sc; one outside is clamped to the nearest end.
TEST(Q4_K, QuantizedWeightsLieWithinHalfAStepOfTheRange) {
  const int64_t n = 256 * 8;
  std::vector<float> x = Gaussian(3, n), y(static_cast<size_t>(n));
  std::vector<BlockQ4_K> q(n / 256);
  QuantizeRowQ4_KRef(x.data(), q.data(), n);
  DequantizeRowQ4_KRef(q.data(), y.data(), n);
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const BlockQ4_K& b = q[i / 256];
    uint8_t sc, m;
    Q4_KScaleMin(b.scales, static_cast<int>(i % 256) / 32, &sc, &m);
    const float step = F16ToF32(b.d) * sc, lo = -F16ToF32(b.dmin) * m, hi = lo + 15 * step;
    const float outside = std::max({0.0f, lo - x[i], x[i] - hi});
    EXPECT_LE(std::fabs(y[i] - x[i]), std::max(0.5f * step, outside) + 1e-5f) << i;
    sq += (y[i] - x[i]) * (y[i] - x[i]);
  }
  // 4 bits over a 32-weight range of about 4 sigma: RMS error near step / sqrt(12) ~ 0.08 sigma.
  EXPECT_LT(std::sqrt(sq / n), 0.1);
}

TEST(Q6_K, QuantizedWeightsLieWithinHalfAStepOfTheRange) {
  const int64_t n = 256 * 8;
  std::vector<float> x = Gaussian(5, n), y(static_cast<size_t>(n));
  std::vector<BlockQ6_K> q(n / 256);
  QuantizeRowQ6_KRef(x.data(), q.data(), n);
  DequantizeRowQ6_KRef(q.data(), y.data(), n);
  double sq = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const BlockQ6_K& b = q[i / 256];
    const float step = F16ToF32(b.d) * b.scales[(i % 256) / 16];
    const float lo = std::min(-32 * step, 31 * step), hi = std::max(-32 * step, 31 * step);
    const float outside = std::max({0.0f, lo - x[i], x[i] - hi});
    EXPECT_LE(std::fabs(y[i] - x[i]), std::max(0.5f * std::fabs(step), outside) + 1e-5f) << i;
    sq += (y[i] - x[i]) * (y[i] - x[i]);
  }
  EXPECT_LT(std::sqrt(sq / n), 0.025);
}

TEST(KQuants, ZeroBlocksStayZero) {
  std::vector<float> x(256, 0.0f), y(256, 1.0f);
  BlockQ4_K b4;
  QuantizeRowQ4_KRef(x.data(), &b4, 256);
  DequantizeRowQ4_KRef(&b4, y.data(), 256);
  for (float v : y) EXPECT_EQ(v, 0.0f);
  BlockQ6_K b6;
  std::fill(y.begin(), y.end(), 1.0f);
  QuantizeRowQ6_KRef(x.data(), &b6, 256);
  DequantizeRowQ6_KRef(&b6, y.data(), 256);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

// Importance that singles out a few channels buys them precision: the error weighted by that
// importance is lower than when quantizing without it.
TEST(KQuants, ImportanceLowersTheWeightedError) {
  const int64_t n = 256 * 16;
  std::vector<float> x = Gaussian(9, n), importance(static_cast<size_t>(n), 0.01f);
  for (int64_t i = 0; i < n; i += 7) importance[static_cast<size_t>(i)] = 1.0f;
  auto weighted_error = [&](DType type, const float* imp) {
    std::vector<uint8_t> bytes(RowBytes(type, n));
    std::vector<float> y(static_cast<size_t>(n));
    if (type == DType::kQ4_K) {
      QuantizeRowQ4_KRef(x.data(), reinterpret_cast<BlockQ4_K*>(bytes.data()), n, imp);
    } else {
      QuantizeRowQ6_KRef(x.data(), reinterpret_cast<BlockQ6_K*>(bytes.data()), n, imp);
    }
    RowToF32(type, bytes.data(), y.data(), n);
    double e = 0.0;
    for (int64_t i = 0; i < n; ++i) e += importance[i] * (y[i] - x[i]) * (y[i] - x[i]);
    return e;
  };
  for (DType type : {DType::kQ4_K, DType::kQ6_K}) {
    const double plain = weighted_error(type, nullptr);
    const double weighted = weighted_error(type, importance.data());
    EXPECT_LT(weighted, 0.8 * plain) << DTypeName(type);
  }
}

}  // namespace
}  // namespace slimlm
