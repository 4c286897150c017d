#include "slimlm/core/file.h"

#include <filesystem>

#include <gtest/gtest.h>

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

}  // namespace
}  // namespace slimlm
