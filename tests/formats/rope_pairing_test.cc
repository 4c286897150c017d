#include "slimlm/formats/rope_pairing.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstring>
#include <numeric>
#include <vector>

namespace slimlm {
namespace {

using ::testing::HasSubstr;

// Rows of one byte each holding their own index, so a permuted buffer reads as the source rows.
std::vector<uint8_t> Iota(int n) {
  std::vector<uint8_t> v(static_cast<size_t>(n));
  std::iota(v.begin(), v.end(), uint8_t{0});
  return v;
}

TEST(RopePairing, MatchesTheDocumentedIndexMapping) {
  // Two heads of 8: adjacent row h*8 + 2i + j is half row h*8 + 4j + i (SOURCES.md "Mapping").
  std::vector<uint8_t> src = Iota(16), half(16);
  PermuteRopeRows(src.data(), half.data(), 2, 8, 1, RopePairing::kAdjacent, RopePairing::kHalf);
  EXPECT_EQ(half, (std::vector<uint8_t>{0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15}));
  for (int h = 0; h < 2; ++h) {
    for (int i = 0; i < 4; ++i) {
      for (int j = 0; j < 2; ++j) EXPECT_EQ(half[h * 8 + 4 * j + i], h * 8 + 2 * i + j);
    }
  }
  std::vector<uint8_t> back(16);
  PermuteRopeRows(half.data(), back.data(), 2, 8, 1, RopePairing::kHalf, RopePairing::kAdjacent);
  EXPECT_EQ(back, src);
}

TEST(RopePairing, RoundTripsWideRowsForManyShapes) {
  for (int heads : {1, 3, 4}) {
    for (int head_dim : {2, 4, 6, 64}) {
      size_t row_bytes = 7;
      size_t n = static_cast<size_t>(heads * head_dim) * row_bytes;
      std::vector<uint8_t> src(n), mid(n), back(n);
      for (size_t i = 0; i < n; ++i) src[i] = static_cast<uint8_t>(i * 31 + 7);
      PermuteRopeRows(src.data(), mid.data(), heads, head_dim, row_bytes, RopePairing::kAdjacent,
                      RopePairing::kHalf);
      PermuteRopeRows(mid.data(), back.data(), heads, head_dim, row_bytes, RopePairing::kHalf,
                      RopePairing::kAdjacent);
      EXPECT_EQ(back, src) << heads << "x" << head_dim;
      if (head_dim > 2) {
        EXPECT_NE(mid, src);
      }
    }
  }
}

TEST(RopePairing, PermutesWeightsOfAnyTypeAndFloatBiases) {
  // A q8_0 weight: 4 rows of one 34-byte block each, 2 heads of 2 rows; head_dim 2 is the
  // identity, so use 1 head of 4 rows.
  std::vector<uint8_t> q8(4 * 34);
  for (size_t r = 0; r < 4; ++r) std::memset(q8.data() + r * 34, static_cast<int>(r), 34);
  StoredTensor weight{
      "blk.0.attn_q.weight", DType::kQ8_0, Shape({4, 32}), q8.data(), q8.size(), nullptr};
  std::vector<uint8_t> out;
  ASSERT_TRUE(PermuteRopeTensor(weight, 1, RopePairing::kAdjacent, RopePairing::kHalf, &out).ok());
  ASSERT_EQ(out.size(), q8.size());
  const uint8_t expected_rows[] = {0, 2, 1, 3};
  for (size_t r = 0; r < 4; ++r) {
    for (size_t b = 0; b < 34; ++b) ASSERT_EQ(out[r * 34 + b], expected_rows[r]);
  }
  std::vector<float> bias = {0, 1, 2, 3, 4, 5, 6, 7};
  StoredTensor b{"blk.0.attn_k.bias",
                 DType::kF32,
                 Shape({8}),
                 reinterpret_cast<const uint8_t*>(bias.data()),
                 32,
                 nullptr};
  ASSERT_TRUE(PermuteRopeTensor(b, 2, RopePairing::kAdjacent, RopePairing::kHalf, &out).ok());
  std::vector<float> permuted(8);
  std::memcpy(permuted.data(), out.data(), 32);
  EXPECT_EQ(permuted, (std::vector<float>{0, 2, 1, 3, 4, 6, 5, 7}));
  // Same pairing: a plain copy.
  ASSERT_TRUE(PermuteRopeTensor(b, 2, RopePairing::kHalf, RopePairing::kHalf, &out).ok());
  EXPECT_EQ(std::memcmp(out.data(), bias.data(), 32), 0);
}

TEST(RopePairing, RejectsShapesThatDoNotSplitIntoEvenHeads) {
  std::vector<float> data(12 * 4);
  StoredTensor t{"blk.0.attn_q.weight", DType::kF32,
                 Shape({12, 4}),        reinterpret_cast<const uint8_t*>(data.data()),
                 data.size() * 4,       nullptr};
  std::vector<uint8_t> out;
  EXPECT_THAT(PermuteRopeTensor(t, 4, RopePairing::kAdjacent, RopePairing::kHalf, &out).message(),
              HasSubstr("cannot be split into 4 heads of an even size"));
  EXPECT_THAT(PermuteRopeTensor(t, 5, RopePairing::kAdjacent, RopePairing::kHalf, &out).message(),
              HasSubstr("blk.0.attn_q.weight"));
  EXPECT_TRUE(PermuteRopeTensor(t, 6, RopePairing::kAdjacent, RopePairing::kHalf, &out).ok());
}

TEST(RopePairing, HeadsOfTensorFollowTheMetadata) {
  Metadata m;
  m.Set("general.architecture", MetaValue::String("llama"));
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.0.attn_q.weight"), -1);
  m.Set("llama.attention.head_count", MetaValue::U32(8));
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.0.attn_k.weight"), 8);
  m.Set("llama.attention.head_count_kv", MetaValue::U32(4));
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.3.attn_q.weight"), 8);
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.3.attn_q.bias"), 8);
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.3.attn_k.weight"), 4);
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.3.attn_k.bias"), 4);
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.3.attn_v.weight"), 0);
  EXPECT_EQ(RopeHeadsOfTensor(m, "blk.3.attn_q_norm.weight"), 0);
  EXPECT_EQ(RopeHeadsOfTensor(m, "token_embd.weight"), 0);
  EXPECT_EQ(StoredRopePairing(m), RopePairing::kAdjacent);
  m.Set(std::string(kRopePairingKey), MetaValue::String("half"));
  EXPECT_EQ(StoredRopePairing(m), RopePairing::kHalf);
  EXPECT_TRUE(ArchitectureUsesAdjacentPairingInGguf("llama"));
  EXPECT_FALSE(ArchitectureUsesAdjacentPairingInGguf("qwen2"));
  EXPECT_FALSE(ArchitectureUsesAdjacentPairingInGguf("qwen3"));
}

}  // namespace
}  // namespace slimlm
