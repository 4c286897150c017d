// slimlm optimize end to end on the bundled default model, with a few candidates and short
// measurements: the choice is the best measured candidate within the budget, measurements are
// cached across runs, an impossible budget says what comes closest, and bad input is one line.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
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

class OptimizeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    text_ = dir_ + "/stories.txt";
    std::ofstream(text_) << testing::kCalibrationStories << testing::kHeldOutStory;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  // A small search: the source, q8_0, q4_0 and calibrated q4_0, f16 KV cache only.
  std::vector<std::string> Args(const std::string& memory) const {
    return {"optimize",   testing::DefaultModelPath(),
            "--data",     text_,
            "--calib",    text_,
            "--memory",   memory,
            "-o",         dir_ + "/best.gguf",
            "--types",    "q8_0,q4_0",
            "--no-prune", "--no-kv-q8",
            "-c",         "64",
            "--chunks",   "2",
            "--n-gen",    "8",
            "-r",         "1",
            "-t",         "1",
            "--json"};
  }

  int CountInLog(const std::string& what) const {
    std::ifstream in(dir_ + "/best.gguf.work/children.log");
    std::stringstream s;
    s << in.rdbuf();
    const std::string log = s.str();
    int n = 0;
    for (size_t at = log.find(what); at != std::string::npos; at = log.find(what, at + 1)) ++n;
    return n;
  }

  std::string dir_;
  std::string text_;
};

// What a user would pick by hand from the measured table: the lowest ΔPPL (then KLD) among the
// candidates within the memory budget.
std::string BestByHand(const nlohmann::json& candidates, double budget) {
  std::string best;
  double best_dppl = 1e300, best_kld = 1e300;
  for (const auto& c : candidates) {
    if (c["memory_bytes"].get<double>() > budget) continue;
    const double dppl = c["delta_ppl_percent"].get<double>();
    const double kld = c["kld"].get<double>();
    if (dppl < best_dppl || (dppl == best_dppl && kld < best_kld)) {
      best = c["name"];
      best_dppl = dppl;
      best_kld = kld;
    }
  }
  return best;
}

double FileBytesOf(const nlohmann::json& candidates, const std::string& name) {
  for (const auto& c : candidates) {
    if (c["name"] == name) return c["file_bytes"].get<double>();
  }
  return -1;
}

TEST_F(OptimizeCli, ChoosesTheBestMeasuredCandidateWithinBudgetAndCaches) {
  testing::ProcessResult r = RunSlimlm(Args("1GiB"), 600);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["candidates"].size(), 4u);
  for (const auto& c : j["candidates"]) {
    EXPECT_GT(c["memory_bytes"].get<double>(), 0) << c["name"];
    EXPECT_GT(c["tg"].get<double>(), 0) << c["name"];
    EXPECT_TRUE(std::isfinite(c["delta_ppl_percent"].get<double>())) << c["name"];
    EXPECT_TRUE(c["meets_budget"].get<bool>()) << c["name"];
  }
  // The source against its own saved log-probabilities, which are stored to within 3e-4 nats:
  // a divergence of that order at most.
  EXPECT_EQ(j["candidates"][0]["name"], "source (f16)");
  EXPECT_LT(j["candidates"][0]["kld"].get<double>(), 3e-4);
  EXPECT_LT(std::abs(j["candidates"][0]["delta_ppl_percent"].get<double>()), 0.03);
  EXPECT_EQ(j["chosen"], BestByHand(j["candidates"], 1e300));
  EXPECT_EQ(std::filesystem::file_size(dir_ + "/best.gguf"),
            FileBytesOf(j["candidates"], j["chosen"]));
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/best.report.html"));
  ASSERT_TRUE(std::filesystem::exists(dir_ + "/best.report.md"));
  const int benches = CountInLog("$ slimlm bench");
  EXPECT_EQ(benches, 4);

  // A budget between the smallest model and the largest, from the figures just measured: the
  // choice is what one would pick by hand from the table, and nothing is measured again.
  double smallest = 1e300, largest = 0;
  for (const auto& c : j["candidates"]) {
    smallest = std::min(smallest, c["memory_bytes"].get<double>());
    largest = std::max(largest, c["memory_bytes"].get<double>());
  }
  ASSERT_LT(smallest, largest);
  const double budget = (smallest + largest) / 2;
  r = RunSlimlm(Args(std::to_string(static_cast<int64_t>(budget))), 600);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  j = nlohmann::json::parse(r.out);
  EXPECT_EQ(CountInLog("$ slimlm bench"), benches);  // All four came from the cache.
  for (const auto& c : j["candidates"]) {
    EXPECT_EQ(c["meets_budget"].get<bool>(), c["memory_bytes"].get<double>() <= budget)
        << c["name"];
  }
  EXPECT_EQ(j["chosen"], BestByHand(j["candidates"], budget));
  EXPECT_LE(std::filesystem::file_size(dir_ + "/best.gguf"),
            FileBytesOf(j["candidates"], j["chosen"]));
}

TEST_F(OptimizeCli, AnImpossibleBudgetNamesTheClosestAndWritesNoModel) {
  testing::ProcessResult r = RunSlimlm(Args("1KiB"), 600);
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("error: no candidate meets the budget"));
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_TRUE(j["chosen"].is_null());
  EXPECT_THAT(j["verdict"].get<std::string>(), HasSubstr("Closest:"));
  EXPECT_THAT(j["verdict"].get<std::string>(), HasSubstr("far above the budget"));
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/best.gguf"));
  EXPECT_TRUE(std::filesystem::exists(dir_ + "/best.report.md"));
}

TEST_F(OptimizeCli, BadInputIsOneLine) {
  auto with = [&](std::vector<std::string> args, const std::string& flag,
                  const std::string& value) {
    auto it = std::find(args.begin(), args.end(), flag);
    *(it + 1) = value;
    return args;
  };
  ExpectOneLineError(RunSlimlm(with(Args("1GiB"), "--data", dir_ + "/missing.txt")),
                     "missing.txt: no such file");
  ExpectOneLineError(RunSlimlm(with(Args("1GiB"), "--calib", dir_ + "/missing.txt")),
                     "missing.txt: no such file");
  ExpectOneLineError(RunSlimlm(Args("big")), "--memory 'big'");
  ExpectOneLineError(RunSlimlm(with(Args("1GiB"), "--types", "q8_0,q3_k")), "q3_k");
  ExpectOneLineError(RunSlimlm(with(Args("1GiB"), "-c", "4096")), "context");
  ExpectOneLineError(RunSlimlm(with(Args("1GiB"), "-o", "/nonexistent/dir/x.gguf")),
                     "/nonexistent/dir");
  EXPECT_FALSE(std::filesystem::exists(dir_ + "/best.gguf.work"));
}

}  // namespace
}  // namespace slimlm
