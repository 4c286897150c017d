// slimlm batch end to end on the bundled default model: one output line per input line (errors
// included), the same greedy texts one at a time and eight at a time, and a job cut short (with a
// half-written last line) resumed without repeating or losing a line.
#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/cli_errors.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using testing::ExpectOneLineError;
using ::testing::HasSubstr;
using testing::RunSlimlm;

class BatchCli : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir();
    input_ = dir_ + "/in.jsonl";
    const char* starts[] = {
        "Once upon a time", "The little dog", "Lily and Ben",     "One day",     "Tom had a ball",
        "The sun was hot",  "Mom said",       "A girl named Sue", "The cat sat", "Ben saw a big"};
    std::ofstream in(input_);
    for (int i = 0; i < 10; ++i) {
      in << nlohmann::json{{"id", "r" + std::to_string(i)},
                           {"prompt", starts[i]},
                           {"max_tokens", 12 + i}}
                .dump()
         << "\n";
    }
    in << "{\"id\": \"bad\", \"prompt\": 7}\n";
    in << "this is not json\n";
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  testing::ProcessResult Batch(const std::string& out, int running) {
    return RunSlimlm({"batch", testing::DefaultModelPath(), input_, "-o", out, "--max-running",
                      std::to_string(running), "-t", "2", "--json"});
  }

  static std::map<std::string, nlohmann::json> Lines(const std::string& path) {
    std::map<std::string, nlohmann::json> by_id;
    std::ifstream in(path);
    for (std::string line; std::getline(in, line);) {
      const nlohmann::json j = nlohmann::json::parse(line);
      EXPECT_FALSE(by_id.contains(j["id"])) << "repeated " << j["id"];
      by_id[j["id"]] = j;
    }
    return by_id;
  }

  std::string dir_;
  std::string input_;
};

TEST_F(BatchCli, AnswersEveryLineAndBatchingChangesNoText) {
  testing::ProcessResult r = Batch(dir_ + "/one.jsonl", 1);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json summary = nlohmann::json::parse(r.out);
  EXPECT_EQ(summary["completed"], 10);
  EXPECT_EQ(summary["errors"], 2);
  const auto one = Lines(dir_ + "/one.jsonl");
  ASSERT_EQ(one.size(), 12u);
  for (int i = 0; i < 10; ++i) {
    const nlohmann::json& j = one.at("r" + std::to_string(i));
    EXPECT_EQ(j["finish_reason"], "length");
    EXPECT_EQ(j["usage"]["completion_tokens"], 12 + i);
    EXPECT_FALSE(j["text"].get<std::string>().empty());
  }
  EXPECT_THAT(one.at("bad")["error"].get<std::string>(), HasSubstr("\"prompt\" must be a string"));
  EXPECT_THAT(one.at("line-12")["error"].get<std::string>(), HasSubstr("not JSON"));
  // Without -c each sequence gets the positions of the longest line (prompt and max_tokens),
  // which every line here uses up.
  int64_t longest = 0;
  for (const auto& [id, j] : one) {
    if (j.contains("usage")) longest = std::max<int64_t>(longest, j["usage"]["total_tokens"]);
  }
  EXPECT_EQ(summary["context"], longest);
  const int64_t kv_one = summary["kv_cache_bytes"];
  EXPECT_GT(kv_one, 0);

  r = Batch(dir_ + "/eight.jsonl", 8);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["kv_cache_bytes"], 8 * kv_one) << "a pool of 8 sequences";
  const auto eight = Lines(dir_ + "/eight.jsonl");
  ASSERT_EQ(eight.size(), 12u);
  for (const auto& [id, j] : one) EXPECT_EQ(eight.at(id), j) << id;
}

TEST_F(BatchCli, ResumesAfterACutWithoutRepeatingALine) {
  const std::string out = dir_ + "/out.jsonl";
  ASSERT_EQ(Batch(out, 4).exit_code, 0);
  const auto full = Lines(out);
  // Keep five whole lines and half of the sixth, as a crash mid-write would.
  std::ifstream in(out);
  std::stringstream kept;
  std::string line;
  for (int i = 0; i < 5 && std::getline(in, line); ++i) kept << line << "\n";
  std::getline(in, line);
  kept << line.substr(0, line.size() / 2);
  in.close();
  std::ofstream(out, std::ios::trunc) << kept.str();

  testing::ProcessResult r = Batch(out, 4);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["skipped"], 5);
  const auto resumed = Lines(out);
  EXPECT_EQ(resumed, full);
}

// Values out of range and requests beyond -c are answered line by line; -c ends a completion
// at the context it gives.
TEST_F(BatchCli, LimitsAreErrorsOfTheirLine) {
  const std::string in = dir_ + "/limits.jsonl";
  std::ofstream(in) << "{\"id\": \"huge\", \"prompt\": \"Once\", \"top_k\": 99999999999999999999}\n"
                    << "{\"id\": \"neg\", \"prompt\": \"Once\", \"max_tokens\": -3}\n"
                    << "{\"id\": \"frac\", \"prompt\": \"Once\", \"max_tokens\": 2.5}\n"
                    << "{\"id\": \"long\", \"prompt\": \"Once upon a time there was a little "
                       "girl named Lily who lived in a small house\"}\n"
                    << "{\"id\": \"short\", \"prompt\": \"Once\", \"max_tokens\": 100}\n";
  const std::string out = dir_ + "/limits-out.jsonl";
  testing::ProcessResult r = RunSlimlm(
      {"batch", testing::DefaultModelPath(), in, "-o", out, "-c", "16", "-t", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 5u);
  EXPECT_THAT(lines.at("huge")["error"].get<std::string>(),
              HasSubstr("\"top_k\" must be an integer"));
  EXPECT_THAT(lines.at("neg")["error"].get<std::string>(), HasSubstr("max_tokens"));
  EXPECT_THAT(lines.at("frac")["error"].get<std::string>(),
              HasSubstr("\"max_tokens\" must be an integer"));
  EXPECT_THAT(lines.at("long")["error"].get<std::string>(), HasSubstr("the context holds 16"));
  const nlohmann::json& s = lines.at("short");
  EXPECT_EQ(s["finish_reason"], "length");
  EXPECT_EQ(s["usage"]["total_tokens"], 16);
}

// Without -c, a line asking for more tokens than any context holds (the largest int64) sizes
// the pool to the model's context, and its completion ends there.
TEST_F(BatchCli, HugeMaxTokensGiveTheModelsContext) {
  const std::string in = dir_ + "/huge.jsonl";
  std::ofstream(in) << "{\"id\": \"all\", \"prompt\": \"Once\", \"max_tokens\": "
                       "9223372036854775807, \"ignore_eos\": true}\n";
  const std::string out = dir_ + "/huge-out.jsonl";
  testing::ProcessResult r =
      RunSlimlm({"batch", testing::DefaultModelPath(), in, "-o", out, "-t", "2", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json summary = nlohmann::json::parse(r.out);
  const auto lines = Lines(out);
  ASSERT_EQ(lines.size(), 1u);
  const nlohmann::json& j = lines.at("all");
  EXPECT_EQ(j["finish_reason"], "length");
  EXPECT_EQ(j["usage"]["total_tokens"], summary["context"]);
  EXPECT_GT(summary["context"].get<int64_t>(), 16);
}

TEST_F(BatchCli, BadInputIsOneLine) {
  ExpectOneLineError(RunSlimlm({"batch", testing::DefaultModelPath(), dir_ + "/missing.jsonl", "-o",
                                dir_ + "/o.jsonl"}),
                     "missing.jsonl");
  ExpectOneLineError(
      RunSlimlm({"batch", testing::DefaultModelPath(), input_, "-o", "/nonexistent/dir/o.jsonl"}),
      "/nonexistent/dir");
  ExpectOneLineError(RunSlimlm({"batch", testing::DefaultModelPath(), input_, "-o",
                                dir_ + "/o.jsonl", "--kv-type", "q4_0"}),
                     "q4_0");
  // A directory (like a pipe) cannot be read twice; it was taken as an empty input.
  ExpectOneLineError(
      RunSlimlm({"batch", testing::DefaultModelPath(), dir_, "-o", dir_ + "/o.jsonl"}),
      "not a regular file");
  std::ofstream(dir_ + "/garbage.jsonl") << "not a batch output\n";
  ExpectOneLineError(
      RunSlimlm({"batch", testing::DefaultModelPath(), input_, "-o", dir_ + "/garbage.jsonl"}),
      "is this a batch output file");
}

}  // namespace
}  // namespace slimlm
