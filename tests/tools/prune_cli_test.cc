// slimlm prune end to end on the bundled default model: a compact 2:4 model and a structured one
// are written, described by info and run; bad targets are one-line errors with no output file.
#include <filesystem>
#include <fstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/cli_errors.h"
#include "support/stories.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using testing::ExpectOneLineError;
using ::testing::HasSubstr;
using testing::RunSlimlm;

class PruneCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    calib_ = dir_ + "/calib.txt";
    std::ofstream(calib_) << testing::kCalibrationStories;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string dir_;
  std::string calib_;
};

TEST_F(PruneCli, WritesACompactTwoFourModelThatInfoDescribesAndRunRuns) {
  const std::string out = dir_ + "/nm.gguf";
  testing::ProcessResult r =
      RunSlimlm({"prune", testing::DefaultModelPath(), out, "--method", "sparsegpt", "--pattern",
                 "2:4", "--type", "f16_nm", "--calib", calib_, "--calib-ctx", "64", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("(50.00%)"));
  EXPECT_THAT(r.out, HasSubstr("stored as f16_nm"));
  // 42 block matrices at 1.125 bytes per weight instead of 2.
  EXPECT_LT(std::filesystem::file_size(out),
            0.7 * std::filesystem::file_size(testing::DefaultModelPath()));

  r = RunSlimlm({"info", out, "--json", "--tensors"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["pruned"], "sparsegpt 2:4 at sparsity 0.5");
  EXPECT_NEAR(info["block_sparsity"].get<double>(), 0.5, 1e-6);
  int nm_tensors = 0;
  for (const auto& t : info["tensors"]) {
    if (t["type"] == "f16_nm") {
      ++nm_tensors;
      EXPECT_NEAR(t["sparsity"].get<double>(), 0.5, 1e-6) << t["name"];
    }
  }
  EXPECT_EQ(nm_tensors, 42);
  r = RunSlimlm({"info", out});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("pruned        sparsegpt 2:4 at sparsity 0.5: 50.00%"));

  r = RunSlimlm({"run", "-m", out, "-p", "Once upon a time", "-n", "16", "--temp", "0", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("Once upon a time"));
}

TEST_F(PruneCli, StructuredPruningWritesASmallerModel) {
  const std::string out = dir_ + "/small.gguf";
  testing::ProcessResult r =
      RunSlimlm({"prune", testing::DefaultModelPath(), out, "--structured", "ffn=0.25,layers=1",
                 "--calib", calib_, "--calib-ctx", "64", "-t", "2"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("layers 6 -> 5"));
  EXPECT_THAT(r.out, HasSubstr("ffn 768 -> 576"));
  r = RunSlimlm({"info", out, "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json info = nlohmann::json::parse(r.out);
  EXPECT_EQ(info["n_layers"], 5);
  EXPECT_EQ(info["ffn_dim"], 576);
  // 5 layers of (4 * 256 * 256 / 2 attention + 3 * 256 * 576 FFN) plus the embedding and norms.
  EXPECT_EQ(
      info["parameters"].get<int64_t>(),
      5 * (256 * 256 + 2 * 128 * 256 + 256 * 256 + 3 * 256 * 576 + 2 * 256) + 4096 * 256 + 256);
  EXPECT_THAT(info["pruned"].get<std::string>(), HasSubstr("structured ffn=0.25,layers=1"));
  r = RunSlimlm({"run", "-m", out, "-p", "Once upon a time", "-n", "8", "--temp", "0"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
}

TEST_F(PruneCli, BadTargetsAreOneLineErrorsAndLeaveNoFile) {
  const std::string model = testing::DefaultModelPath();
  const std::string out = dir_ + "/never.gguf";
  struct Case {
    std::vector<std::string> args;
    std::string fragment;
  };
  const Case cases[] = {
      {{"--sparsity", "1.5"}, "outside (0, 1)"},
      {{"--sparsity", "0"}, "outside (0, 1)"},
      {{"--method", "magnitude", "--pattern", "3:5"}, "not a multiple of 5"},
      {{"--pattern", "4:2"}, "not N:M"},
      {{"--structured", "heads=1"}, "remove all of them"},
      {{"--structured", "layers=6", "--calib", calib_}, "every layer"},
      {{"--structured", "ffn=0.25"}, "needs calibration text"},
      {{"--structured", "ffn=0.25", "--calib", calib_, "--calib-ctx", "4096"},
       "shorter than one chunk of 4096"},
      {{"--sparsity", "0.5", "--pattern", "2:4"}, "give one target"},
      {{}, "give one target"},
      {{"--method", "wanda", "--sparsity", "0.5"}, "needs calibration text"},
      {{"--method", "obs", "--sparsity", "0.5"}, "not magnitude, wanda or sparsegpt"},
      {{"--method", "magnitude", "--sparsity", "0.5", "--type", "f16_nm"}, "50% N:M"},
      {{"--method", "magnitude", "--pattern", "2:4", "--type", "q4_0"}, "quantize the pruned"},
  };
  for (const Case& c : cases) {
    std::vector<std::string> args = {"prune", model, out};
    args.insert(args.end(), c.args.begin(), c.args.end());
    testing::ProcessResult r = RunSlimlm(args);
    SCOPED_TRACE(c.fragment);
    ExpectOneLineError(r, c.fragment);
    EXPECT_FALSE(std::filesystem::exists(out));
  }
  // Only the calibration text is there: no temporary file was left behind either.
  int files = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir_)) ++files;
  EXPECT_EQ(files, 1);
}

TEST_F(PruneCli, CompactStorageRefusesRowsThatAreNotWholeBlocks) {
  // stories260K's FFN is 172 wide: 2:4 divides it, f16_nm's 32-weight blocks do not.
  constexpr const char* kModel = "models/stories260K/stories260K.gguf";
  SLIMLM_REQUIRE_SHARED_DATA(kModel);
  const std::string out = dir_ + "/nm.gguf";
  testing::ProcessResult r = RunSlimlm({"prune", testing::SharedDataPath(kModel), out, "--method",
                                        "magnitude", "--pattern", "2:4", "--type", "f16_nm"});
  ExpectOneLineError(r, "has rows of 172");
  EXPECT_FALSE(std::filesystem::exists(out));
}

}  // namespace
}  // namespace slimlm
