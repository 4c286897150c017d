// The f16_nm block layout (a keep mask, then the kept values as f16 in position order), checked
// byte by byte, and its conversions: exact round trips of N:M-sparse rows, padding of sparser
// groups, the 4 largest magnitudes of denser ones, and masks that break the 4-of-8 rule.
#include <algorithm>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/tensor/half.h"
#include "slimlm/tensor/quant_blocks.h"

namespace slimlm {
namespace {

// A row of n values with `keep` nonzeros at random places in every aligned group of `group`
// (keep 2 of 4, 4 of 8, 1 of 2), each value exact in f16 so that a round trip is exact.
std::vector<float> SparseRow(std::mt19937& rng, int64_t n, int group, int keep) {
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n), 0.0f);
  std::vector<int> order(static_cast<size_t>(group));
  for (int64_t g = 0; g < n; g += group) {
    for (int i = 0; i < group; ++i) order[i] = i;
    std::shuffle(order.begin(), order.end(), rng);
    for (int i = 0; i < keep; ++i) {
      float v = 0.0f;
      while (v == 0.0f) v = F16ToF32(F32ToF16(dist(rng)));
      x[g + order[i]] = v;
    }
  }
  return x;
}

std::vector<float> RoundTrip(const std::vector<float>& x) {
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint8_t> bytes(RowBytes(DType::kF16NM, n), 0xAB);
  RowFromF32(DType::kF16NM, x.data(), bytes.data(), n);
  std::vector<float> back(x.size(), -1.0f);
  RowToF32(DType::kF16NM, bytes.data(), back.data(), n);
  return back;
}

TEST(F16NM, TraitsNameAndSizes) {
  EXPECT_EQ(DTypeName(DType::kF16NM), "f16_nm");
  EXPECT_EQ(ParseDType("F16_NM"), DType::kF16NM);
  EXPECT_TRUE(IsKnownDType(1001));
  EXPECT_EQ(static_cast<uint32_t>(DType::kF16NM), 1001u);
  EXPECT_EQ(Traits(DType::kF16NM).block_size, 32);
  EXPECT_EQ(Traits(DType::kF16NM).block_bytes, 36);
  // Its products take f32 activations, not 8-bit ones.
  EXPECT_FALSE(Traits(DType::kF16NM).quantized);
  EXPECT_EQ(RowBytes(DType::kF16NM, 2048), 2304u);
  EXPECT_FALSE(IsRowLengthValid(DType::kF16NM, 48));
}

// Elements 1, 2, 4, 7 of group 0; 0, 3, 5, 6 of group 1; the first four of the all-zero groups.
TEST(F16NM, LayoutIsLittleEndianMaskThenKeptValuesInOrder) {
  std::vector<float> x(32, 0.0f);
  const int kept[] = {1, 2, 4, 7, 8, 11, 13, 14};
  for (int i = 0; i < 8; ++i) x[kept[i]] = static_cast<float>(i + 1);
  uint8_t bytes[36];
  RowFromF32(DType::kF16NM, x.data(), bytes, 32);
  const uint8_t expected_mask[4] = {0x96, 0x69, 0x0f, 0x0f};
  EXPECT_EQ(std::memcmp(bytes, expected_mask, 4), 0);
  for (int j = 0; j < 16; ++j) {
    uint16_t h;
    std::memcpy(&h, bytes + 4 + 2 * j, 2);
    EXPECT_EQ(F16ToF32(h), j < 8 ? static_cast<float>(j + 1) : 0.0f) << "value " << j;
  }
}

TEST(F16NM, RoundTripsTwoFourFourEightAndOneTwoRowsExactly) {
  std::mt19937 rng(5);
  struct Pattern {
    int keep, group;
  };
  for (Pattern p : {Pattern{2, 4}, Pattern{4, 8}, Pattern{1, 2}}) {
    for (int64_t n = 32; n <= 1024; n += 96) {
      std::vector<float> x = SparseRow(rng, n, p.group, p.keep);
      ASSERT_TRUE(IsRowNMHalfSparse(x.data(), n));
      std::vector<uint8_t> bytes(RowBytes(DType::kF16NM, n));
      RowFromF32(DType::kF16NM, x.data(), bytes.data(), n);
      std::vector<BlockF16NM> blocks(static_cast<size_t>(n / 32));
      std::memcpy(blocks.data(), bytes.data(), bytes.size());
      EXPECT_TRUE(IsF16NMRowValid(blocks.data(), n));
      EXPECT_EQ(RoundTrip(x), x) << p.keep << ":" << p.group << " n=" << n;
    }
  }
}

// Fewer than 4 nonzeros: the nonzeros plus the first zero positions, stored as zeros.
TEST(F16NM, SparserGroupsArePaddedWithTheirFirstZeros) {
  std::vector<float> x(32, 0.0f);
  x[5] = 1.5f;
  x[7] = -2.0f;
  x[8 + 6] = 3.0f;
  BlockF16NM b;
  CompressRowF16NMRef(x.data(), &b, 32);
  EXPECT_EQ(b.mask & 0xff, 0xa3u);         // 0, 1, 5, 7
  EXPECT_EQ((b.mask >> 8) & 0xff, 0x47u);  // 0, 1, 2, 6
  EXPECT_EQ(b.mask >> 16, 0x0f0fu);        // All-zero groups keep 0-3.
  EXPECT_EQ(F16ToF32(b.vals[2]), 1.5f);
  EXPECT_EQ(F16ToF32(b.vals[3]), -2.0f);
  EXPECT_EQ(F16ToF32(b.vals[7]), 3.0f);
  EXPECT_EQ(RoundTrip(x), x);
}

// More than 4 nonzeros: the 4 largest magnitudes stay, the others are dropped (the earlier
// position wins a tie).
TEST(F16NM, DenserGroupsKeepTheFourLargestMagnitudes) {
  std::vector<float> x = {1.0f, -8.0f, 3.0f, 0.5f, -7.0f, 2.0f, 6.0f, 0.25f,  // 1, 2, 4, 6
                          1.0f, 1.0f,  1.0f, 1.0f, 1.0f,  0.0f, 0.0f, 1.0f};  // ties: 0-3
  x.resize(32, 0.0f);
  EXPECT_FALSE(IsRowNMHalfSparse(x.data(), 32));
  std::vector<float> expected = {0.0f, -8.0f, 3.0f, 0.0f, -7.0f, 0.0f, 6.0f, 0.0f,
                                 1.0f, 1.0f,  1.0f, 1.0f, 0.0f,  0.0f, 0.0f, 0.0f};
  expected.resize(32, 0.0f);
  EXPECT_EQ(RoundTrip(x), expected);
}

// Groups are aligned: 8 nonzeros straddling two groups, 4 in each, are N:M-sparse; a shorter
// last group counts too.
TEST(F16NM, HalfSparseCheckCountsPerAlignedGroup) {
  std::vector<float> x(16, 0.0f);
  for (int i = 4; i < 12; ++i) x[i] = 1.0f;
  EXPECT_TRUE(IsRowNMHalfSparse(x.data(), 16));
  x[0] = 1.0f;
  EXPECT_FALSE(IsRowNMHalfSparse(x.data(), 16));
  std::vector<float> tail = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1};
  EXPECT_FALSE(IsRowNMHalfSparse(tail.data(), 13));
  EXPECT_TRUE(IsRowNMHalfSparse(tail.data(), 12));
}

// A mask byte of 5 bits is invalid; expanding it reads nothing outside the block (the block is
// alone on the heap, so the address sanitizer would see it) and its 5th kept element is zero.
TEST(F16NM, InvalidMasksAreDetectedAndExpandInsideTheBlock) {
  auto block = std::make_unique<BlockF16NM>();
  block->mask = 0xffffff1f;  // 5, 8, 8 and 8 bits.
  for (int j = 0; j < 16; ++j) block->vals[j] = F32ToF16(static_cast<float>(j + 1));
  EXPECT_FALSE(IsF16NMRowValid(block.get(), 32));
  float y[32];
  ExpandRowF16NMRef(block.get(), y, 32);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[3], 4.0f);
  EXPECT_EQ(y[4], 0.0f);
  EXPECT_EQ(y[31], 0.0f);
  block->mask = 0x0f0f0f0f;
  EXPECT_TRUE(IsF16NMRowValid(block.get(), 32));
}

}  // namespace
}  // namespace slimlm
