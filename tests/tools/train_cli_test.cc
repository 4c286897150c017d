// slimlm train end to end: a tiny preset trained for a few steps writes a model that loads,
// a checkpoint continues to more steps, and bad starts are one-line errors with no output.
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

constexpr const char* kTok = "models/stories260K/tok512.bin";
constexpr const char* kText = "text/tinystories/train/tinystories-train-00.txt";

TEST(TrainCli, TrainsWritesAModelAndResumesFromItsCheckpoint) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok);
  SLIMLM_REQUIRE_SHARED_DATA(kText);
  const std::string dir = testing::MakeTempDir();
  auto r = RunSlimlm({"train",
                      "--preset",
                      "tiny",
                      "--tokenizer",
                      SharedDataPath(kTok),
                      "--data",
                      SharedDataPath(kText),
                      "-o",
                      dir + "/m.gguf",
                      "--steps",
                      "6",
                      "--ctx",
                      "32",
                      "--batch",
                      "2",
                      "--eval-every",
                      "3",
                      "--eval-windows",
                      "4",
                      "--checkpoint",
                      dir + "/c.gguf",
                      "-t",
                      "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("step      6/6"));
  EXPECT_THAT(r.err, HasSubstr("held-out"));
  auto info = RunSlimlm({"info", dir + "/m.gguf"});
  ASSERT_EQ(info.exit_code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("dim 64"));
  // Trained from slimlm init's random weights, it is no longer called random.
  EXPECT_THAT(info.out, ::testing::Not(HasSubstr("random")));
  EXPECT_THAT(info.err, ::testing::Not(HasSubstr("random")));
  EXPECT_THAT(info.out, HasSubstr("name          m\n"));
  EXPECT_THAT(info.out, HasSubstr("trained       by slimlm on 0.00 M tokens"));
  auto named = RunSlimlm(
      {"convert", dir + "/m.gguf", dir + "/named.gguf", "--type", "f16", "--name", "my-model"});
  ASSERT_EQ(named.exit_code, 0) << named.err;
  EXPECT_THAT(RunSlimlm({"info", dir + "/named.gguf"}).out, HasSubstr("name          my-model\n"));
  auto resumed = RunSlimlm({"train", "--resume", dir + "/c.gguf", "--data", SharedDataPath(kText),
                            "-o", dir + "/m2.gguf", "--steps", "8", "--ctx", "32", "--batch", "2",
                            "--eval-every", "0", "-t", "1"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_THAT(resumed.err, HasSubstr("2 steps"));
  // The checkpoint is at step 6; asking for no more steps is an error.
  ExpectOneLineError(
      RunSlimlm({"train", "--resume", dir + "/c.gguf", "--data", SharedDataPath(kText), "-o",
                 dir + "/m3.gguf", "--steps", "6", "--ctx", "32", "--batch", "2"}),
      "give --steps beyond it");
  // ... and only on the same data.
  std::string story;
  for (int i = 0; i < 40; ++i) story += "Once upon a time there was a cat who liked milk. ";
  std::ofstream(dir + "/other.txt") << story;
  ExpectOneLineError(
      RunSlimlm({"train", "--resume", dir + "/c.gguf", "--data", dir + "/other.txt", "-o",
                 dir + "/m3.gguf", "--steps", "8", "--ctx", "32", "--batch", "2"}),
      "the checkpoint's run trained on other data");
  // A resumed run reads the same windows only with the same batch, context and seed.
  ExpectOneLineError(
      RunSlimlm({"train", "--resume", dir + "/c.gguf", "--data", SharedDataPath(kText), "-o",
                 dir + "/m3.gguf", "--steps", "8", "--ctx", "32", "--batch", "4"}),
      "the checkpoint's run used batch 2, this one 4");
  EXPECT_FALSE(std::filesystem::exists(dir + "/m3.gguf"));
}

TEST(TrainCli, BadStartsAreOneLineErrors) {
  SLIMLM_REQUIRE_SHARED_DATA(kTok);
  const std::string dir = testing::MakeTempDir();
  ExpectOneLineError(RunSlimlm({"train", "--data", SharedDataPath(kTok), "-o", dir + "/m.gguf"}),
                     "one starting point");
  ExpectOneLineError(RunSlimlm({"train", "--preset", "tiny", "--data", SharedDataPath(kTok), "-o",
                                dir + "/m.gguf"}),
                     "needs --tokenizer");
  ExpectOneLineError(RunSlimlm({"train", "--preset", "tiny", "--tokenizer", SharedDataPath(kTok),
                                "--data", dir + "/missing.txt", "-o", dir + "/m.gguf"}),
                     "missing.txt");
  ExpectOneLineError(
      RunSlimlm({"train", "--preset", "tiny", "--tokenizer", SharedDataPath(kTok), "--dim", "65",
                 "--data", SharedDataPath(kTok), "-o", dir + "/m.gguf"}),
      "multiple of --heads");
  // An output that cannot be written fails at once, not after training.
  ExpectOneLineError(RunSlimlm({"train", "--preset", "tiny", "--tokenizer", SharedDataPath(kTok),
                                "--data", SharedDataPath(kTok), "-o", dir + "/no/such/m.gguf"}),
                     "no/such/m.gguf");
  // A few sentences: some windows of 32 tokens, but not a batch of 500 of them.
  std::string story;
  for (int i = 0; i < 20; ++i) story += "Once upon a time there was a cat who liked milk. ";
  std::ofstream(dir + "/story.txt") << story;
  ExpectOneLineError(RunSlimlm({"train", "--preset", "tiny", "--tokenizer", SharedDataPath(kTok),
                                "--data", dir + "/story.txt", "--ctx", "32", "--batch", "500",
                                "--valid-fraction", "0", "-o", dir + "/m.gguf"}),
                     "fewer than one batch of 500");
  EXPECT_FALSE(std::filesystem::exists(dir + "/m.gguf"));
}

}  // namespace
}  // namespace slimlm
