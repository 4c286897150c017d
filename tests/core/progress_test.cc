#include "slimlm/core/progress.h"

#include <gtest/gtest.h>

namespace slimlm {
namespace {

TEST(Progress, FormatsBarRateAndEta) {
  std::string line = Progress::FormatLine("ppl", 50, 200, "tok", 10.0, 10);
  EXPECT_EQ(line, "ppl [##........]  25% 50/200 tok 5.0 tok/s ETA 0:30");
}

TEST(Progress, PlainLinesWithoutTotalOrBar) {
  EXPECT_EQ(Progress::FormatLine("load", 7, 0, "", 2.0, 0), "load 7 3.5/s in 0:02");
  EXPECT_EQ(Progress::FormatLine("q", 10, 10, "", 4.0, 0), "q 100% 10/10 2.5/s in 0:04");
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(Progress::FormatDuration(0.4), "0:00");
  EXPECT_EQ(Progress::FormatDuration(61), "1:01");
  EXPECT_EQ(Progress::FormatDuration(3725), "1:02:05");
}

TEST(Progress, WritesPlainLinesToAFile) {
  FILE* f = std::tmpfile();
  {
    Progress p("work", 4, "items", Progress::Mode::kPlain, f);
    p.Update(4);
  }
  std::rewind(f);
  char buffer[256] = {};
  size_t n = std::fread(buffer, 1, sizeof(buffer) - 1, f);
  std::fclose(f);
  std::string text(buffer, n);
  EXPECT_NE(text.find("work 100% 4/4 items"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos);
}

}  // namespace
}  // namespace slimlm
