// The GGUF block layouts of q8_0 and q4_0 and the error bounds of their reference quantizers.
#include "slimlm/tensor/quant_blocks.h"

#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/tensor/half.h"

namespace slimlm {
namespace {

TEST(Q4_0, PacksElementJInLowNibbleAndJPlus16InHighNibble) {
  // Codes chosen per element: element j has value (j % 16) - 8 times the scale.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>((j % 16) - 8);
  BlockQ4_0 b;
  QuantizeRowQ4_0Ref(x.data(), &b, 32);
  // The largest magnitude is -8 (code 0), so d = -8 / -8 = 1.
  EXPECT_EQ(F16ToF32(b.d), 1.0f);
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(b.qs[j] & 0x0f, j % 16) << j;
    EXPECT_EQ(b.qs[j] >> 4, (j + 16) % 16) << j;
  }
  std::vector<float> y(32);
  DequantizeRowQ4_0Ref(&b, y.data(), 32);
  EXPECT_EQ(y, x);
}

TEST(Q8_0, LayoutIsScaleThenThirtyTwoInt8) {
  std::vector<float> x(32, 0.0f);
  x[0] = 127.0f;
  x[5] = -63.5f;
  BlockQ8_0 b;
  QuantizeRowQ8_0Ref(x.data(), &b, 32);
  EXPECT_EQ(F16ToF32(b.d), 1.0f);
  EXPECT_EQ(b.qs[0], 127);
  EXPECT_EQ(b.qs[5], -64);  // roundf rounds halves away from zero.
  const uint8_t* bytes = reinterpret_cast<const uint8_t*>(&b);
  EXPECT_EQ(bytes[0] | (bytes[1] << 8), 0x3c00);  // f16 1.0, little-endian, first.
  EXPECT_EQ(static_cast<int8_t>(bytes[2]), 127);
}

TEST(Quantization, ErrorStaysWithinHalfAStep) {
  std::mt19937 rng(4);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  const int64_t n = 32 * 64;
  std::vector<float> x(n), y(n);
  for (float& v : x) v = dist(rng);
  std::vector<BlockQ8_0> q8(n / 32);
  QuantizeRowQ8_0Ref(x.data(), q8.data(), n);
  DequantizeRowQ8_0Ref(q8.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    float d = F16ToF32(q8[i / 32].d);
    // Rounding to the step, plus the f16 rounding of the scale times up to 127 steps.
    EXPECT_LE(std::fabs(x[i] - y[i]), 0.5f * d + 127.0f * d * 0x1p-11f) << i;
  }
  std::vector<BlockQ4_0> q4(n / 32);
  QuantizeRowQ4_0Ref(x.data(), q4.data(), n);
  DequantizeRowQ4_0Ref(q4.data(), y.data(), n);
  for (int64_t i = 0; i < n; ++i) {
    // d carries the sign of the block's largest-magnitude value, which maps to code 0 (-8 d).
    // Values of the other sign reach at most code 15 (+7 d): those beyond 7.5 d are clamped and
    // may be off by up to a whole step; the rest round to within half a step.
    float d = F16ToF32(q4[i / 32].d);
    float steps = x[i] / d;
    float bound = (steps > 7.5f ? 1.0f : 0.5f) * std::fabs(d) + 8.0f * std::fabs(d) * 0x1p-11f;
    EXPECT_LE(std::fabs(x[i] - y[i]), bound + 1e-6f) << i;
  }
}

TEST(Quantization, ZeroBlockStaysZero) {
  std::vector<float> x(32, 0.0f), y(32, 1.0f);
  BlockQ4_0 b;
  QuantizeRowQ4_0Ref(x.data(), &b, 32);
  DequantizeRowQ4_0Ref(&b, y.data(), 32);
  for (float v : y) EXPECT_EQ(v, 0.0f);
}

TEST(RowConversions, RoundTripEveryType) {
  std::vector<float> x(64);
  for (int i = 0; i < 64; ++i) x[i] = static_cast<float>(i) - 31.5f;
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0}) {
    std::vector<uint8_t> bytes(RowBytes(t, 64));
    std::vector<float> y(64);
    RowFromF32(t, x.data(), bytes.data(), 64);
    RowToF32(t, bytes.data(), y.data(), 64);
    const float tolerance = t == DType::kQ4_0 ? 2.5f : t == DType::kQ8_0 ? 0.13f : 0.07f;
    for (int i = 0; i < 64; ++i) EXPECT_NEAR(y[i], x[i], tolerance) << DTypeName(t);
  }
}

TEST(DType, ParsesNamesAndKnowsSizes) {
  EXPECT_EQ(ParseDType("Q8_0"), DType::kQ8_0);
  EXPECT_EQ(ParseDType("bf16"), DType::kBF16);
  EXPECT_FALSE(ParseDType("q5_k").has_value());
  EXPECT_EQ(RowBytes(DType::kQ4_0, 64), 36u);
  EXPECT_EQ(RowBytes(DType::kF16, 7), 14u);
  EXPECT_FALSE(IsRowLengthValid(DType::kQ8_0, 33));
  EXPECT_TRUE(IsKnownDType(30));
  EXPECT_TRUE(IsKnownDType(12));
  EXPECT_FALSE(IsKnownDType(13));
  EXPECT_EQ(GgmlTypeName(13), "q5_k");
  EXPECT_EQ(ParseDType("Q4_K"), DType::kQ4_K);
  EXPECT_EQ(RowBytes(DType::kQ4_K, 512), 288u);
  EXPECT_EQ(RowBytes(DType::kQ6_K, 256), 210u);
  EXPECT_FALSE(IsRowLengthValid(DType::kQ6_K, 128));
}

}  // namespace
}  // namespace slimlm
