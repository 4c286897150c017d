#include "slimlm/core/status.h"

#include <gtest/gtest.h>

namespace slimlm {
namespace {

Result<int> ParsePositive(int x) {
  if (x <= 0) return InvalidArgumentError("value {} is not positive", x);
  return x;
}

Result<int> Doubled(int x) {
  SLIMLM_ASSIGN_OR_RETURN(int v, ParsePositive(x));
  return 2 * v;
}

TEST(Status, OkByDefault) {
  Status s;
  EXPECT_TRUE(s.ok());
  EXPECT_EQ(s.ToString(), "ok");
}

TEST(Status, CarriesCodeAndFormattedMessage) {
  Status s = CorruptError("{}: bad magic {:#x}", "m.gguf", 0x1234);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kCorrupt);
  EXPECT_EQ(s.message(), "m.gguf: bad magic 0x1234");
  EXPECT_EQ(s.WithContext("loading").message(), "loading: m.gguf: bad magic 0x1234");
}

TEST(Result, PropagatesErrorsThroughAssignOrReturn) {
  EXPECT_EQ(*Doubled(4), 8);
  Result<int> bad = Doubled(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "value -1 is not positive");
}

TEST(ResultDeathTest, ValueOfErrorAborts) {
  Result<int> bad = ParsePositive(0);
  EXPECT_DEATH((void)bad.value(), "value\\(\\) on an error Result");
}

}  // namespace
}  // namespace slimlm
