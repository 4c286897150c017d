// The slimlm command line end to end: the acceptance commands on real data, exit codes
// (0 ok, 1 failure, 2 usage), one-line errors for bad input, and no half-written outputs.
#include <csignal>
#include <filesystem>
#include <fstream>

#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "support/cli_errors.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using testing::ExpectOneLineError;
using ::testing::HasSubstr;
using testing::RunSlimlm;
using testing::SharedDataPath;
using ::testing::StartsWith;

const std::string kBin = "models/stories260K/stories260K.bin";
const std::string kGguf = "models/stories260K/stories260K.gguf";
const std::string kHf = "models/stories260K/hf";
const std::string kTok = "models/stories260K/tok512.bin";

std::string ReferenceText() {
  std::ifstream in(SharedDataPath("models/stories260K/reference/greedy.json"));
  return nlohmann::json::parse(in)["prompt_once_upon_a_time_64"]["text"].get<std::string>();
}

// An error is one line starting with "error: ".
TEST(Cli, RunPrintsTheReferenceContinuationInEveryFormat) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  const std::string expected = ReferenceText();
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"-m", SharedDataPath(kBin)},
           {"-m", SharedDataPath(kGguf)},
           {"-m", SharedDataPath(kHf), "--tokenizer", SharedDataPath(kTok)}}) {
    std::vector<std::string> cmd = {"run", "-p", "Once upon a time", "--temp", "0", "-n", "64"};
    cmd.insert(cmd.end(), args.begin(), args.end());
    auto r = RunSlimlm(cmd);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    // The reference is 64 steps of llama2.c including the prompt; -n counts new tokens, so the
    // reference is a prefix of the output.
    EXPECT_THAT(r.out, StartsWith(expected)) << args[1];
    EXPECT_THAT(r.err, HasSubstr("tok/s"));
  }
}

TEST(Cli, RunJsonGivesTokens) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  auto r = RunSlimlm({"run", "-m", SharedDataPath(kGguf), "-p", "Once upon a time", "--temp", "0",
                      "-n", "5", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["prompt_tokens"].get<std::vector<int>>(), (std::vector<int>{1, 403, 407, 261, 378}));
  EXPECT_EQ(j["tokens"].get<std::vector<int>>(), (std::vector<int>{432, 383, 286, 261, 376}));
  EXPECT_EQ(j["stop_reason"], "length");
}

TEST(Cli, BadUsageExitsWithTwo) {
  auto r = RunSlimlm({"frobnicate"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown command 'frobnicate'"));
  r = RunSlimlm({"run", "-p", "hi"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.err, HasSubstr("--model"));
  r = RunSlimlm({"run", "-m", "x.gguf", "-p", "hi", "--no-such-flag"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(RunSlimlm({}).exit_code, 2);
}

TEST(Cli, BadOptionValueIsAUsageError) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  auto r = RunSlimlm({"run", "-m", SharedDataPath(kGguf), "-p", "hi", "--temp", "-1"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "temperature -1");
  r = RunSlimlm({"run", "-m", SharedDataPath(kGguf), "-p", "hi", "--top-p", "0"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "top-p");
}

TEST(Cli, HelpDescribesCommands) {
  auto r = RunSlimlm({"help"});
  EXPECT_EQ(r.exit_code, 0);
  for (const char* c : {"run", "info", "tokenize", "convert", "init", "hw", "bench"}) {
    EXPECT_THAT(r.out, HasSubstr(c));
  }
  r = RunSlimlm({"help", "run"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("--temp"));
  EXPECT_THAT(r.out, HasSubstr("--repeat-penalty"));
}

TEST(Cli, MissingAndCorruptFilesGiveOneLineErrors) {
  std::string dir = testing::MakeTempDir();
  auto r = RunSlimlm({"info", dir + "/nope.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, dir + "/nope.gguf");

  ASSERT_TRUE(WriteFileAtomically(dir + "/junk.bin", "this is not a model at all").ok());
  r = RunSlimlm({"run", "-m", dir + "/junk.bin", "-p", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, dir + "/junk.bin");

  if (testing::HasSharedData(kGguf)) {
    std::string bytes = *ReadFileToString(SharedDataPath(kGguf));
    for (size_t cut : {size_t{3}, size_t{24}, size_t{1000}, bytes.size() / 2, bytes.size() - 1}) {
      ASSERT_TRUE(WriteFileAtomically(dir + "/cut.gguf", bytes.substr(0, cut)).ok());
      r = RunSlimlm({"run", "-m", dir + "/cut.gguf", "-p", "hi"});
      EXPECT_EQ(r.exit_code, 1) << "cut at " << cut;
      ExpectOneLineError(r, dir + "/cut.gguf");
    }
  }
}

TEST(Cli, MissingTokenizerAndLongPromptAreExplained) {
  SLIMLM_REQUIRE_SHARED_DATA(kHf);
  auto r = RunSlimlm({"run", "-m", SharedDataPath(kHf), "-p", "hi"});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, "--tokenizer");
  r = RunSlimlm({"run", "-m", SharedDataPath(kGguf), "-c", "8", "-p",
                 "Once upon a time there was a very long prompt"});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, "context");
}

TEST(Cli, InfoAndTokenize) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  auto r = RunSlimlm({"info", SharedDataPath(kBin), "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["parameters"], 260032);  // SOURCES.md: 260,032 weight parameters.
  EXPECT_EQ(j["n_layers"], 5);
  EXPECT_EQ(j["tied_embeddings"], true);
  // Keys and values, 5 layers, 512 positions, 32 values each, f16 by default.
  EXPECT_EQ(j["kv_cache"]["bytes"].get<double>(), 2.0 * 5 * 512 * 32 * 2);
  EXPECT_EQ(j["kv_cache"]["type"], "f16");
  r = RunSlimlm({"info", SharedDataPath(kBin), "--json", "--kv-type", "f32"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["kv_cache"]["bytes"].get<double>(),
            2.0 * 5 * 512 * 32 * 4);
  r = RunSlimlm({"info", SharedDataPath(kBin), "--kv-type", "q8_0"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "multiple of 32");
  r = RunSlimlm({"run", "-m", SharedDataPath(kBin), "-p", "hi", "--kv-type", "q4_0"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "KV cache type 'q4_0'");
  r = RunSlimlm({"tokenize", SharedDataPath(kGguf), "Once upon a time", "--ids"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "1 403 407 261 378\n");
}

TEST(Cli, ConvertChainKeepsTheModelWorking) {
  SLIMLM_REQUIRE_SHARED_DATA(kBin);
  std::string dir = testing::MakeTempDir();
  auto r = RunSlimlm({"convert", SharedDataPath(kBin), dir + "/a.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunSlimlm({"convert", dir + "/a.gguf", dir + "/hf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunSlimlm({"convert", dir + "/hf", dir + "/b.gguf"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  r = RunSlimlm(
      {"run", "-m", dir + "/b.gguf", "-p", "Once upon a time", "--temp", "0", "-n", "64"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, StartsWith(ReferenceText()));
}

TEST(Cli, ConvertToAnUnwritablePlaceFailsCleanly) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  std::string dir = testing::MakeTempDir();
  auto r = RunSlimlm({"convert", SharedDataPath(kGguf), dir + "/missing/dir/out.gguf"});
  EXPECT_EQ(r.exit_code, 1);
  ExpectOneLineError(r, "out.gguf");
  EXPECT_FALSE(std::filesystem::exists(dir + "/missing"));
}

// Stopping a writer at any moment leaves either no output or a complete one, and no temporary
// file: SIGINT and SIGTERM land at several points of making and writing a 418 MiB model.
TEST(Cli, InterruptedWriteLeavesNoHalfFile) {
  std::string dir = testing::MakeTempDir();
  int interrupted = 0;
  for (double delay : {0.1, 0.4, 0.7, 1.0, 1.3}) {
    for (int sig : {SIGINT, SIGTERM}) {
      std::string out = dir + "/m.gguf";
      std::filesystem::remove(out);
      auto r = testing::RunSlimlmAndSignal({"init", "--preset", "110m", out}, delay, sig);
      if (r.signal == sig) ++interrupted;
      for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        EXPECT_EQ(entry.path().filename().string(), "m.gguf")
            << "left behind after signal " << sig << " at " << delay << " s";
      }
      if (std::filesystem::exists(out)) {
        EXPECT_EQ(RunSlimlm({"info", out}).exit_code, 0) << "a half-written file after " << delay;
      }
    }
  }
  RecordProperty("interrupted_runs", interrupted);
  EXPECT_GT(interrupted, 0) << "no run was interrupted: the test checked nothing";
}

TEST(Cli, InitIsDeterministicAndSaysWeightsAreRandom) {
  std::string dir = testing::MakeTempDir();
  ASSERT_EQ(RunSlimlm({"init", "--preset", "tiny", "--seed", "5", dir + "/a.gguf"}).exit_code, 0);
  ASSERT_EQ(RunSlimlm({"init", "--preset", "tiny", "--seed", "5", dir + "/b.gguf"}).exit_code, 0);
  ASSERT_EQ(RunSlimlm({"init", "--preset", "tiny", "--seed", "6", dir + "/c.gguf"}).exit_code, 0);
  EXPECT_EQ(*ReadFileToString(dir + "/a.gguf"), *ReadFileToString(dir + "/b.gguf"));
  EXPECT_NE(*ReadFileToString(dir + "/a.gguf"), *ReadFileToString(dir + "/c.gguf"));
  auto r = RunSlimlm({"run", "-m", dir + "/a.gguf", "-p", "hello", "-n", "8", "--seed", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("weights are random"));
  r = RunSlimlm({"init", "--preset", "huge", dir + "/d.gguf"});
  EXPECT_EQ(r.exit_code, 2);
  ExpectOneLineError(r, "unknown preset 'huge'");
}

TEST(Cli, ThreadCountsBeyondTheCpusAreClampedWithAWarning) {
  std::string model = testing::MakeTempDir() + "/tiny.gguf";
  ASSERT_EQ(RunSlimlm({"init", "--preset", "tiny", model}).exit_code, 0);
  const std::vector<std::string> run = {"run", "-m", model,    "-p", "hello",
                                        "-n",  "8",  "--temp", "0"};
  auto one = RunSlimlm([&] {
    auto a = run;
    a.insert(a.end(), {"-t", "1"});
    return a;
  }());
  ASSERT_EQ(one.exit_code, 0) << one.err;
  auto many = RunSlimlm([&] {
    auto a = run;
    a.insert(a.end(), {"-t", "1000"});
    return a;
  }());
  ASSERT_EQ(many.exit_code, 0) << many.err;
  EXPECT_THAT(many.err, HasSubstr("warning: -t 1000: this process may use"));
  // Float products sum every row in one fixed order, so the threads do not change the text.
  EXPECT_EQ(many.out, one.out);
  auto zero = RunSlimlm({"run", "-m", model, "-p", "hello", "-t", "-1"});
  EXPECT_EQ(zero.exit_code, 2) << zero.err;
}

TEST(Cli, EvalPplPrintsLlamaPerplexityStyleFiguresAndJson) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  SLIMLM_REQUIRE_SHARED_DATA("text/tinystories/TinyStories-valid.head.txt");
  const std::string data = SharedDataPath("text/tinystories/TinyStories-valid.head.txt");
  auto r = RunSlimlm(
      {"eval", "ppl", SharedDataPath(kGguf), "--data", data, "-c", "128", "--chunks", "3"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("3 chunks of 128 tokens"));
  EXPECT_THAT(r.out, HasSubstr("[1]"));
  EXPECT_THAT(r.out, HasSubstr("Final estimate: PPL = "));
  EXPECT_THAT(r.out, HasSubstr("bits per byte"));
  // With --profile: the same figures on stdout, the operation table on stderr.
  auto j = RunSlimlm({"eval", "ppl", "-m", SharedDataPath(kGguf), "-f", data, "-c", "128",
                      "--chunks", "3", "--json", "--profile"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  EXPECT_THAT(j.err, HasSubstr("eval ppl"));
  EXPECT_THAT(j.err, HasSubstr("attention"));
  EXPECT_THAT(j.err, HasSubstr("GB/s"));
  auto result = nlohmann::json::parse(j.out);
  EXPECT_EQ(result["chunks"], 3);
  EXPECT_EQ(result["scored_tokens"], 3 * 63);
  EXPECT_EQ(result["running_ppl"].size(), 3u);
  // The same figure as the text output, to its printed precision.
  EXPECT_THAT(r.out, HasSubstr(fmt::format("PPL = {:.4f}", result["ppl"].get<double>())));

  std::string dir = testing::MakeTempDir();
  ASSERT_TRUE(WriteFileAtomically(dir + "/short.txt", "Once upon a time.").ok());
  ExpectOneLineError(
      RunSlimlm({"eval", "ppl", SharedDataPath(kGguf), "--data", dir + "/short.txt"}),
      "needs at least 1024");
  auto missing = RunSlimlm({"eval", "ppl", SharedDataPath(kGguf), "--data", dir + "/nope.txt"});
  EXPECT_EQ(missing.exit_code, 1);
  ExpectOneLineError(missing, "nope.txt");
  EXPECT_EQ(RunSlimlm({"eval", "ppl", SharedDataPath(kGguf)}).exit_code, 2) << "no --data";
  EXPECT_EQ(RunSlimlm({"eval"}).exit_code, 2) << "no subcommand";
  auto kld = RunSlimlm({"eval", "kld", SharedDataPath(kGguf), "--ref", SharedDataPath(kGguf),
                        "--data", data, "-c", "128", "--chunks", "2", "--json"});
  ASSERT_EQ(kld.exit_code, 0) << kld.err;
  auto k = nlohmann::json::parse(kld.out);
  EXPECT_EQ(k["positions"], 2 * 63);
  EXPECT_EQ(k["top1_agreement"], 1.0);
  ExpectOneLineError(RunSlimlm({"eval", "kld", SharedDataPath(kGguf), "--data", data}),
                     "no reference");
  // The reference's log-probabilities saved, then used without loading it.
  const std::string logits = dir + "/ref.logits";
  auto saved = RunSlimlm({"eval", "kld", SharedDataPath(kGguf), "--save-logits", logits, "--data",
                          data, "-c", "128", "--chunks", "2"});
  ASSERT_EQ(saved.exit_code, 0) << saved.err;
  auto from_file = RunSlimlm({"eval", "kld", SharedDataPath(kGguf), "--ref-logits", logits,
                              "--data", data, "-c", "128", "--chunks", "2", "--json"});
  ASSERT_EQ(from_file.exit_code, 0) << from_file.err;
  auto f = nlohmann::json::parse(from_file.out);
  EXPECT_EQ(f["positions"], 2 * 63);
  EXPECT_LT(f["kld_mean"].get<double>(), 3e-4) << "the model against its own saved logits";
  ExpectOneLineError(RunSlimlm({"eval", "kld", SharedDataPath(kGguf), "--ref-logits", logits,
                                "--data", data, "-c", "64", "--chunks", "2"}),
                     "saved with -c 128");
  ExpectOneLineError(RunSlimlm({"eval", "kld", SharedDataPath(kGguf), "--ref",
                                SharedDataPath(kGguf), "--ref-logits", logits, "--data", data}),
                     "not both");

  ASSERT_TRUE(WriteFileAtomically(dir + "/tasks.jsonl",
                                  "{\"context\": \"Once upon a time, there was a little\", "
                                  "\"choices\": [\"girl.\", \"the of and.\"], \"label\": 0}\n")
                  .ok());
  auto choice = RunSlimlm({"eval", "choice", SharedDataPath(kGguf), "--tasks", dir + "/tasks.jsonl",
                           "--template", "{context}", "--template", "Story: {context}", "--json"});
  ASSERT_EQ(choice.exit_code, 0) << choice.err;
  auto c = nlohmann::json::parse(choice.out);
  ASSERT_EQ(c.size(), 2u);
  EXPECT_EQ(c[1]["template"], "Story: {context}");
  EXPECT_EQ(c[0]["acc"], 1.0) << "a real model prefers the grammatical ending";
  ExpectOneLineError(RunSlimlm({"eval", "choice", SharedDataPath(kGguf), "--tasks",
                                dir + "/tasks.jsonl", "--template", "no slot"}),
                     "has no {context}");
}

TEST(Cli, QuantizeWritesASummaryAndRefusesBadInput) {
  SLIMLM_REQUIRE_SHARED_DATA(kGguf);
  const std::string dir = testing::MakeTempDir();
  auto r = RunSlimlm({"quantize", SharedDataPath(kGguf), dir + "/q8.gguf", "--type", "q8_0",
                      "--keep-tensor", "output\\.weight=f16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("bits per weight over the matrices"));
  EXPECT_THAT(r.out, HasSubstr("q8_0 "));
  auto run = RunSlimlm(
      {"run", "-m", dir + "/q8.gguf", "-p", "Once upon a time", "-n", "8", "--temp", "0"});
  EXPECT_EQ(run.exit_code, 0) << run.err;
  ExpectOneLineError(
      RunSlimlm({"quantize", SharedDataPath(kGguf), dir + "/x.gguf", "--type", "q5_0"}),
      "--type 'q5_0' is not one of");
  ExpectOneLineError(RunSlimlm({"quantize", SharedDataPath(kGguf), dir + "/x.gguf", "--type",
                                "q4_0", "--keep-tensor", "nonsense"}),
                     "is not REGEX=TYPE");
  ExpectOneLineError(RunSlimlm({"quantize", dir + "/q8.gguf", dir + "/q8.gguf", "--type", "q4_0"}),
                     "is the input");
  auto up = RunSlimlm({"quantize", dir + "/q8.gguf", dir + "/f16.gguf", "--type", "f16"});
  EXPECT_EQ(up.exit_code, 2);
  ExpectOneLineError(up, "cannot bring the precision back");
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
  EXPECT_FALSE(std::filesystem::exists(dir + "/f16.gguf"));

  // Calibration: a text shorter than one chunk, and contradictory flags.
  ASSERT_TRUE(WriteFileAtomically(dir + "/short.txt", "Once upon a time.").ok());
  ExpectOneLineError(RunSlimlm({"quantize", SharedDataPath(kGguf), dir + "/x.gguf", "--type",
                                "q4_0", "--calib", dir + "/short.txt"}),
                     "shorter than one context");
  ExpectOneLineError(RunSlimlm({"quantize", SharedDataPath(kGguf), dir + "/x.gguf", "--type",
                                "q4_0", "--calib", dir + "/short.txt", "--stats", "s.gguf"}),
                     "give one");
  ExpectOneLineError(RunSlimlm({"quantize", SharedDataPath(kGguf), dir + "/x.gguf", "--type",
                                "q4_0", "--save-stats", dir + "/s.gguf"}),
                     "--save-stats needs --calib");
  EXPECT_FALSE(std::filesystem::exists(dir + "/x.gguf"));
}

}  // namespace
}  // namespace slimlm
