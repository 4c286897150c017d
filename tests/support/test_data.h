// Access to ../shared/data from tests. A test that needs a file there calls
// SLIMLM_REQUIRE_SHARED_DATA first, which skips the test with a clear message when the folder
// (or the file) is absent.
#ifndef SLIMLM_TESTS_SUPPORT_TEST_DATA_H_
#define SLIMLM_TESTS_SUPPORT_TEST_DATA_H_

#include <string>

#include <gtest/gtest.h>

namespace slimlm::testing {

// The shared data folder: $SLIMLM_SHARED_DATA if set, else <repo>/../shared/data (from CMake).
std::string SharedDataDir();
// SharedDataDir() + "/" + relative.
std::string SharedDataPath(const std::string& relative);
// True when SharedDataPath(relative) exists.
bool HasSharedData(const std::string& relative);
// A fresh empty directory under the system temp dir, removed at process exit.
std::string MakeTempDir();
// slimlm's own default model, bundled in the repository (models/): tests that need a real
// model use it when ../shared is absent.
std::string DefaultModelPath();
// Absolute path of the slimlm binary built beside the tests ($SLIMLM_BINARY overrides it).
std::string SlimlmBinary();
// The tests' source folder (scripts tests run live there) and the build folder (for things a
// test installs once, such as npm packages).
std::string TestsSourceDir();
std::string BuildDir();

}  // namespace slimlm::testing

#define SLIMLM_REQUIRE_SHARED_DATA(relative)                                                   \
  do {                                                                                         \
    if (!::slimlm::testing::HasSharedData(relative)) {                                         \
      GTEST_SKIP() << "shared data not found: " << ::slimlm::testing::SharedDataPath(relative) \
                   << " (tests that use real models need ../shared/data)";                     \
    }                                                                                          \
  } while (0)

#endif  // SLIMLM_TESTS_SUPPORT_TEST_DATA_H_
