// Checks on a failed slimlm run: a nonzero exit and exactly one line on stderr,
// "error: <what>: <why>", that names the problem.
#ifndef SLIMLM_TESTS_SUPPORT_CLI_ERRORS_H_
#define SLIMLM_TESTS_SUPPORT_CLI_ERRORS_H_

#include <algorithm>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/subprocess.h"

namespace slimlm::testing {

inline void ExpectOneLineError(const ProcessResult& r, const std::string& fragment) {
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.err, ::testing::StartsWith("error: "));
  EXPECT_THAT(r.err, ::testing::HasSubstr(fragment));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace slimlm::testing

#endif  // SLIMLM_TESTS_SUPPORT_CLI_ERRORS_H_
