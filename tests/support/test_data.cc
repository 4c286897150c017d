#include "support/test_data.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <vector>

namespace slimlm::testing {
namespace {

std::vector<std::string>& TempDirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

void RemoveTempDirs() {
  for (const auto& dir : TempDirs()) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
}

}  // namespace

std::string SharedDataDir() {
  const char* env = std::getenv("SLIMLM_SHARED_DATA");
  return env != nullptr ? env : SLIMLM_SHARED_DATA_DEFAULT;
}

std::string SharedDataPath(const std::string& relative) { return SharedDataDir() + "/" + relative; }

bool HasSharedData(const std::string& relative) {
  struct stat st;
  return ::stat(SharedDataPath(relative).c_str(), &st) == 0;
}

std::string MakeTempDir() {
  static std::once_flag once;
  // TempDirs() is constructed before atexit registers RemoveTempDirs, so that its destructor
  // runs after RemoveTempDirs at exit (reverse order) rather than before it.
  std::call_once(once, [] {
    TempDirs();
    std::atexit(RemoveTempDirs);
  });
  std::string pattern = (std::filesystem::temp_directory_path() / "slimlm-test-XXXXXX").string();
  std::vector<char> buffer(pattern.begin(), pattern.end());
  buffer.push_back('\0');
  char* dir = ::mkdtemp(buffer.data());
  if (dir == nullptr) {
    ADD_FAILURE() << "mkdtemp failed";
    return "/tmp";
  }
  TempDirs().push_back(dir);
  return dir;
}

std::string DefaultModelPath() { return SLIMLM_DEFAULT_MODEL; }

std::string TestsSourceDir() { return SLIMLM_TESTS_DIR; }
std::string BuildDir() { return SLIMLM_BUILD_DIR; }

std::string SlimlmBinary() {
  const char* env = std::getenv("SLIMLM_BINARY");
  return env != nullptr ? env : SLIMLM_BINARY_DEFAULT;
}

}  // namespace slimlm::testing
