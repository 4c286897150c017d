// f16 and bf16 conversions against brute-force nearest-value rounding computed in double.
#include "slimlm/tensor/half.h"

#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

namespace slimlm {
namespace {

TEST(Half, EveryF16RoundTripsThroughF32) {
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = F16ToF32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(F16ToF32(F32ToF16(f))));
      continue;
    }
    EXPECT_EQ(F32ToF16(f), h) << std::hex << h;
  }
}

TEST(Half, KnownValues) {
  EXPECT_EQ(F32ToF16(1.0f), 0x3c00);
  EXPECT_EQ(F32ToF16(-2.0f), 0xc000);
  EXPECT_EQ(F32ToF16(65504.0f), 0x7bff);
  EXPECT_EQ(F32ToF16(65520.0f), 0x7c00);  // Halfway to the next power rounds to infinity.
  EXPECT_EQ(F32ToF16(0x1p-24f), 0x0001);  // Smallest subnormal.
  EXPECT_EQ(F32ToF16(0x1p-25f), 0x0000);  // Exactly half of it: ties to even (zero).
  EXPECT_EQ(F16ToF32(0x3555), 0.333251953125f);
  EXPECT_EQ(F32ToBF16(1.0f), 0x3f80);
  EXPECT_EQ(BF16ToF32(0x4049), 3.140625f);
}

// The f16 value nearest to x, ties to even, by scanning all finite f16 values' neighbors.
uint16_t NearestF16(double x) {
  static std::vector<std::pair<double, uint16_t>> table = [] {
    std::vector<std::pair<double, uint16_t>> t;
    for (uint32_t h = 0; h < 0x7c00; ++h) t.push_back({F16ToF32(static_cast<uint16_t>(h)), h});
    return t;
  }();
  double a = std::fabs(x);
  uint16_t sign = x < 0 ? 0x8000 : 0;
  if (a >= 65520.0) return sign | 0x7c00;
  auto it = std::lower_bound(table.begin(), table.end(), std::make_pair(a, uint16_t{0}));
  if (it == table.end()) return sign | 0x7bff;
  if (it == table.begin()) return sign | it->second;
  auto lo = std::prev(it);
  double dlo = a - lo->first, dhi = it->first - a;
  if (dlo < dhi) return sign | lo->second;
  if (dhi < dlo) return sign | it->second;
  return sign | ((lo->second & 1) == 0 ? lo->second : it->second);
}

TEST(Half, RandomF32RoundsToNearestEven) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<uint32_t> bits;
  int checked = 0;
  while (checked < 200000) {
    float f = BitsToFloat(bits(rng));
    if (!std::isfinite(f) || std::fabs(f) > 1e6f || (std::fabs(f) < 1e-9f && f != 0.0f)) continue;
    ASSERT_EQ(F32ToF16(f), NearestF16(f)) << f;
    ++checked;
  }
}

TEST(BFloat16, RoundsToNearestEven) {
  std::mt19937 rng(2);
  std::uniform_int_distribution<uint32_t> bits;
  for (int i = 0; i < 100000; ++i) {
    uint32_t u = bits(rng);
    float f = BitsToFloat(u);
    if (!std::isfinite(f)) continue;
    float lo = BitsToFloat(u & 0xffff0000u);
    float hi = BitsToFloat((u & 0xffff0000u) + 0x10000u);
    float got = BF16ToF32(F32ToBF16(f));
    double dlo = std::fabs(static_cast<double>(f) - lo),
           dhi = std::fabs(static_cast<double>(hi) - f);
    if (dlo < dhi) {
      EXPECT_EQ(got, lo);
    } else if (dhi < dlo) {
      EXPECT_EQ(got, hi);
    }
  }
  EXPECT_TRUE(std::isnan(BF16ToF32(F32ToBF16(std::numeric_limits<float>::quiet_NaN()))));
}

}  // namespace
}  // namespace slimlm
