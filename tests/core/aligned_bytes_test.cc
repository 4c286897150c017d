#include "slimlm/core/aligned_bytes.h"

#include <cstdint>
#include <cstring>
#include <utility>

#include <gtest/gtest.h>

namespace slimlm {
namespace {

uintptr_t Address(const AlignedBytes& b) { return reinterpret_cast<uintptr_t>(b.data()); }

TEST(AlignedBytes, SmallBuffersAreCacheLineAlignedLargeOnesHugePageAligned) {
  AlignedBytes small(100);
  ASSERT_NE(small.data(), nullptr);
  EXPECT_EQ(small.size(), 100u);
  EXPECT_EQ(Address(small) % 64, 0u);
  AlignedBytes large((size_t{2} << 20) + 1);
  ASSERT_NE(large.data(), nullptr);
  EXPECT_EQ(Address(large) % (size_t{2} << 20), 0u);
  std::memset(large.data(), 7, large.size());  // Every byte is usable (ASan checks the bounds).
  EXPECT_EQ(large.data()[large.size() - 1], 7);
}

TEST(AlignedBytes, MovesOwnership) {
  AlignedBytes a(256);
  uint8_t* p = a.data();
  AlignedBytes b(std::move(a));
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.size(), 256u);
  EXPECT_EQ(a.data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty.
  EXPECT_EQ(a.size(), 0u);
  AlignedBytes c(64);
  c = std::move(b);
  EXPECT_EQ(c.data(), p);
  EXPECT_EQ(AlignedBytes(0).data(), nullptr);
}

}  // namespace
}  // namespace slimlm
