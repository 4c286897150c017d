// slimlm distill end to end: stories260K teaches a student made of two of its layers, the
// teacher's top-k is cached and read back by a second run, and bad students are one-line errors
// with no output.
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "support/cli_errors.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using testing::ExpectOneLineError;
using ::testing::HasSubstr;
using testing::RunSlimlm;
using testing::SharedDataPath;

constexpr const char* kTeacher = "models/stories260K/stories260K.gguf";
constexpr const char* kText = "text/tinystories/train/tinystories-train-00.txt";

// The first 20 KB of TinyStories (a few dozen stories): a quick teacher pass.
std::string SmallText(const std::string& dir) {
  std::ifstream in(SharedDataPath(kText), std::ios::binary);
  std::string text(20000, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  const std::string path = dir + "/small.txt";
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

TEST(DistillCli, DistillsAStudentOfTwoLayersAndCachesTheTeacher) {
  SLIMLM_REQUIRE_SHARED_DATA(kTeacher);
  SLIMLM_REQUIRE_SHARED_DATA(kText);
  const std::string dir = testing::MakeTempDir();
  const std::string text = SmallText(dir);
  const std::vector<std::string> args = {"distill",
                                         "--teacher",
                                         SharedDataPath(kTeacher),
                                         "--keep-layers",
                                         "0,3",
                                         "--data",
                                         text,
                                         "--ctx",
                                         "32",
                                         "--batch",
                                         "2",
                                         "--steps",
                                         "4",
                                         "--eval-every",
                                         "2",
                                         "--eval-windows",
                                         "4",
                                         "--teacher-cache",
                                         dir + "/teacher.cache",
                                         "-t",
                                         "1",
                                         "-o",
                                         dir + "/student.gguf"};
  auto r = RunSlimlm(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("student 0.16 M"));  // 2 of 5 layers, with both embeddings
  EXPECT_THAT(r.err, HasSubstr("teacher: top 16 of"));
  EXPECT_THAT(r.err, HasSubstr("step      4/4"));
  auto info = RunSlimlm({"info", dir + "/student.gguf"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("dim 64, 2 layers"));
  // A second run reads the teacher's top-k instead of running it.
  auto again = RunSlimlm(args);
  ASSERT_EQ(again.exit_code, 0) << again.err;
  EXPECT_THAT(again.err, HasSubstr("read from " + dir + "/teacher.cache"));
  // A student from a configuration: a preset shape with random weights, the teacher's vocabulary.
  std::vector<std::string> from_config = args;
  from_config[3] = "--preset";
  from_config[4] = "tiny";
  from_config.insert(from_config.end(), {"--dim", "32", "--layers", "1", "--heads", "2",
                                         "--kv-heads", "1", "--ffn", "64"});
  auto configured = RunSlimlm(from_config);
  ASSERT_EQ(configured.exit_code, 0) << configured.err;
  EXPECT_THAT(configured.err, HasSubstr("parameters, dim 32, 1 layers, 2 heads (1 kv)"));
}

TEST(DistillCli, BadStudentsAreOneLineErrors) {
  SLIMLM_REQUIRE_SHARED_DATA(kTeacher);
  SLIMLM_REQUIRE_SHARED_DATA(kText);
  const std::string dir = testing::MakeTempDir();
  const std::string text = SmallText(dir);
  const std::string out = dir + "/student.gguf";
  auto distill = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = {"distill", "--teacher", SharedDataPath(kTeacher),
                                     "--data",  text,        "--ctx",
                                     "32",      "--steps",   "2",
                                     "-o",      out};
    args.insert(args.end(), extra.begin(), extra.end());
    return RunSlimlm(args);
  };
  ExpectOneLineError(distill({}), "give one student");
  ExpectOneLineError(distill({"--keep-layers", "0", "--student", SharedDataPath(kTeacher)}),
                     "give one student");
  ExpectOneLineError(distill({"--keep-layers", "0,7"}), "layer 7 does not exist");
  ExpectOneLineError(distill({"--keep-layers", "1,1"}), "listed twice");
  // A student with another vocabulary: a tokenizer of 300 tokens learned from the text.
  auto tok =
      RunSlimlm({"train-tokenizer", text, "-o", dir + "/tok300.gguf", "--vocab-size", "300"});
  ASSERT_EQ(tok.exit_code, 0) << tok.err;
  auto init = RunSlimlm(
      {"init", "--preset", "tiny", "--tokenizer", dir + "/tok300.gguf", dir + "/other.gguf"});
  ASSERT_EQ(init.exit_code, 0) << init.err;
  ExpectOneLineError(distill({"--student", dir + "/other.gguf"}),
                     "the teacher's tokenizer has 512 tokens, the student's 300");
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace slimlm
