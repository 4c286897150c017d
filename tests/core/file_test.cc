#include "slimlm/core/file.h"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <vector>

#include <gtest/gtest.h>

#include "slimlm/core/memory_usage.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

TEST(AtomicFileWriter, CommitRenamesIntoPlace) {
  std::string dir = testing::MakeTempDir();
  std::string path = dir + "/out.bin";
  auto writer = *AtomicFileWriter::Create(path);
  ASSERT_TRUE(writer->Write("hello").ok());
  ASSERT_TRUE(writer->WriteZeros(3).ok());
  EXPECT_EQ(writer->offset(), 8u);
  EXPECT_FALSE(std::filesystem::exists(path));  // Nothing visible before the commit.
  ASSERT_TRUE(writer->Commit().ok());
  EXPECT_EQ(*ReadFileToString(path), std::string("hello\0\0\0", 8));
}

TEST(AtomicFileWriter, AbandonedWriteLeavesNoFileAndKeepsTheOldOne) {
  std::string dir = testing::MakeTempDir();
  std::string path = dir + "/model.gguf";
  ASSERT_TRUE(WriteFileAtomically(path, "old").ok());
  {
    auto writer = *AtomicFileWriter::Create(path);
    ASSERT_TRUE(writer->Write("half of a new fi").ok());
    // Destroyed without Commit, as when a conversion fails midway.
  }
  EXPECT_EQ(*ReadFileToString(path), "old");
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    (void)e;
    ++files;
  }
  EXPECT_EQ(files, 1) << "the temporary file was not removed";
}

TEST(MappedFile, MapsContentsAndReportsMissingFiles) {
  std::string dir = testing::MakeTempDir();
  ASSERT_TRUE(WriteFileAtomically(dir + "/a", "abc").ok());
  auto file = MappedFile::Open(dir + "/a");
  ASSERT_TRUE(file.ok());
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(file->data()), file->size()), "abc");
  auto missing = MappedFile::Open(dir + "/nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), dir + "/nope: no such file");
  EXPECT_EQ(MappedFile::Open(dir).status().code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(WriteFileAtomically(dir + "/empty", "").ok());
  auto empty = MappedFile::Open(dir + "/empty");
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->size(), 0u);
}

TEST(MappedFile, ReleasedPagesLeaveResidentMemoryAndComeBackUnchanged) {
  const std::string dir = testing::MakeTempDir();
  const std::string path = dir + "/big.bin";
  constexpr size_t kBytes = size_t{16} << 20;
  {
    std::vector<uint8_t> bytes(kBytes);
    for (size_t i = 0; i < kBytes; ++i) bytes[i] = static_cast<uint8_t>(i * 131 + (i >> 12));
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(kBytes));
  }
  Result<MappedFile> file = MappedFile::Open(path);
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  auto checksum = [&] {
    uint64_t sum = 0;
    for (size_t i = 0; i < kBytes; ++i) sum = sum * 31 + file->data()[i];
    return sum;
  };
  const uint64_t expected = checksum();  // Every page is resident now.
  const int64_t touched = ReadMemoryUsage().rss_bytes;
  ReleaseMappedPages(file->data(), kBytes);
  const int64_t released = ReadMemoryUsage().rss_bytes;
  EXPECT_GE(touched - released, static_cast<int64_t>(kBytes) * 7 / 8);
  EXPECT_EQ(checksum(), expected);  // Read again from the page cache, the same bytes.

  // Memory that is not a mapping is left alone (MADV_DONTNEED would zero it).
  std::vector<uint8_t> heap(kBytes, 7);
  ReleaseMappedPages(heap.data(), heap.size());
  EXPECT_EQ(std::count(heap.begin(), heap.end(), 7), static_cast<std::ptrdiff_t>(kBytes));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace slimlm
