#include "slimlm/core/memory_usage.h"

#include <cstring>
#include <memory>

#include <gtest/gtest.h>

namespace slimlm {
namespace {

TEST(MemoryUsage, GrowsByWhatIsTouched) {
  const MemoryUsage before = ReadMemoryUsage();
  ASSERT_GT(before.rss_bytes, 0) << "no /proc/self/status";
  EXPECT_GE(before.peak_rss_bytes, before.rss_bytes);
  constexpr size_t kBytes = size_t{64} << 20;
  std::unique_ptr<char[]> block(new char[kBytes]);
  std::memset(block.get(), 1, kBytes);  // Untouched pages would not be resident.
  const MemoryUsage after = ReadMemoryUsage();
  // All 64 MiB are resident now; allow 1/8 for pages the allocator already held.
  EXPECT_GE(after.rss_bytes - before.rss_bytes, static_cast<int64_t>(kBytes) * 7 / 8);
  EXPECT_GE(after.peak_rss_bytes, after.rss_bytes);
  EXPECT_EQ(block[kBytes - 1], 1);
}

}  // namespace
}  // namespace slimlm
