// slimlm train-tokenizer end to end: the vocabulary it writes works with tokenize and init, the
// summary and --json, and bad input gives a one-line error, a nonzero exit and no output file.
#include <algorithm>
#include <filesystem>
#include <fstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "slimlm/formats/tokenizer_files.h"
#include "support/cli_errors.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using testing::ExpectOneLineError;
using ::testing::HasSubstr;
using testing::RunSlimlm;
using ::testing::StartsWith;

// Writes a small training text and returns its path.
std::string WriteText(const std::string& dir) {
  const std::string path = dir + "/text.txt";
  std::ofstream out(path, std::ios::binary);
  for (int i = 0; i < 50; ++i) {
    out << "Once upon a time, a little dog named Max found a red ball in the park.\n"
           "Max was happy. He played with the ball all day. Le café était fermé.\n";
  }
  return path;
}

TEST(TrainTokenizerCli, WritesAVocabularyThatTokenizeAndInitUse) {
  const std::string dir = testing::MakeTempDir();
  const std::string text = WriteText(dir);
  const std::string vocab = dir + "/tok.gguf";
  auto r = RunSlimlm({"train-tokenizer", text, "--vocab-size", "320", "-o", vocab});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("wrote " + vocab + ": 320 tokens"));
  EXPECT_THAT(r.out, HasSubstr("bytes/token"));

  Metadata metadata;
  ASSERT_TRUE(ReadTokenizerFile(vocab, 0, &metadata).ok());
  EXPECT_EQ(metadata.GetString("tokenizer.ggml.model"), "llama");

  r = RunSlimlm({"tokenize", vocab, "Max found a café.", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["ids"][0], 1);  // BOS
  std::string joined;
  for (const auto& piece : j["pieces"]) joined += piece.get<std::string>();
  EXPECT_EQ(joined,
            "<s>\xE2\x96\x81Max\xE2\x96\x81"
            "found\xE2\x96\x81"
            "a\xE2\x96\x81"
            "café.");

  const std::string model = dir + "/tiny.gguf";
  r = RunSlimlm({"init", "--preset", "tiny", "--tokenizer", vocab, model});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunSlimlm({"tokenize", model, "Max found a café.", "--ids"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::vector<int> ids;
  for (const auto& id : j["ids"]) ids.push_back(id.get<int>());
  std::string expected;
  for (size_t i = 0; i < ids.size(); ++i) expected += (i ? " " : "") + std::to_string(ids[i]);
  EXPECT_EQ(r.out, expected + "\n");
}

TEST(TrainTokenizerCli, JsonSummaryAndDeterminism) {
  const std::string dir = testing::MakeTempDir();
  const std::string text = WriteText(dir);
  auto a =
      RunSlimlm({"train-tokenizer", text, "-o", dir + "/a.gguf", "--vocab-size", "300", "--json"});
  ASSERT_EQ(a.exit_code, 0) << a.err;
  auto j = nlohmann::json::parse(a.out);
  EXPECT_EQ(j["vocab_size"], 300);
  EXPECT_EQ(j["reserved_tokens"], 259);
  EXPECT_EQ(j["base_characters"].get<int>() + j["merges"].get<int>(), 300 - 259);
  EXPECT_GT(j["bytes_per_token"].get<double>(), 1.0);
  auto b = RunSlimlm({"train-tokenizer", text, "-o", dir + "/b.gguf", "--vocab-size", "300"});
  ASSERT_EQ(b.exit_code, 0) << b.err;
  std::ifstream fa(dir + "/a.gguf", std::ios::binary), fb(dir + "/b.gguf", std::ios::binary);
  const std::string bytes_a((std::istreambuf_iterator<char>(fa)), {});
  const std::string bytes_b((std::istreambuf_iterator<char>(fb)), {});
  // The files differ only in the output name, which is not stored: identical bytes.
  EXPECT_EQ(bytes_a, bytes_b);
}

TEST(TrainTokenizerCli, BadInputFailsWithOneLineAndNoFile) {
  const std::string dir = testing::MakeTempDir();
  const std::string text = WriteText(dir);
  const std::string out = dir + "/out.gguf";
  auto r = RunSlimlm({"train-tokenizer", dir + "/missing.txt", "-o", out});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, "missing.txt: no such file");

  std::ofstream(dir + "/empty.txt").close();
  r = RunSlimlm({"train-tokenizer", dir + "/empty.txt", "-o", out});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "empty.txt: the file is empty");

  r = RunSlimlm({"train-tokenizer", text, "-o", out, "--vocab-size", "100"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "vocab size 100 is too small: the minimum is 260");

  r = RunSlimlm({"train-tokenizer", text, "-o", out, "--vocab-size", "100000000"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "too large");

  r = RunSlimlm({"train-tokenizer", text, "-o", dir + "/no/such/dir/out.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, "out.gguf");

  r = RunSlimlm({"train-tokenizer", text});  // no -o
  EXPECT_EQ(r.exit_code, 2);

  EXPECT_FALSE(std::filesystem::exists(out));
  // Nothing else was left behind either (no temporary files).
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    EXPECT_THAT(entry.path().filename().string(), ::testing::AnyOf("text.txt", "empty.txt"));
  }
}

}  // namespace
}  // namespace slimlm
