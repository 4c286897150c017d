// slimlm hw and slimlm bench end to end: JSON that parses with plausible figures, one record per
// test with llama-bench's field names, and one-line usage errors for bad flags.
#include <sched.h>

#include <algorithm>
#include <set>
#include <sstream>
#include <string>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using ::testing::HasSubstr;
using testing::RunSlimlm;

// The last line of stderr is the one error; no other line is an error (notes may precede it).
void ExpectUsageError(const testing::ProcessResult& r, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << r.err;
  std::string err = r.err;
  while (!err.empty() && err.back() == '\n') err.pop_back();
  const std::string last =
      err.substr(err.rfind('\n') == std::string::npos ? 0 : err.rfind('\n') + 1);
  EXPECT_THAT(last, ::testing::StartsWith("error: ")) << r.err;
  EXPECT_THAT(last, HasSubstr(fragment));
  size_t errors = 0;
  for (size_t at = r.err.find("error:"); at != std::string::npos;
       at = r.err.find("error:", at + 1)) {
    ++errors;
  }
  EXPECT_EQ(errors, 1u) << r.err;
}

// A tiny random model, made once for the whole suite.
const std::string& TinyModel() {
  static const std::string path = [] {
    std::string p = testing::MakeTempDir() + "/tiny.gguf";
    auto r = RunSlimlm({"init", "--preset", "tiny", p});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return p;
  }();
  return path;
}

// "1,2" where this process may use two CPUs, else "1" (bench refuses more threads than that).
std::string ThreadList() {
  cpu_set_t set;
  const bool two = sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) >= 2;
  return two ? "1,2" : "1";
}

TEST(Hw, JsonHasPlausibleLimits) {
  auto r = RunSlimlm({"hw", "--quick", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["cpu_model"].get<std::string>().empty());
  EXPECT_GE(j["physical_cores"].get<int>(), 1);
  EXPECT_GE(j["logical_cpus"].get<int>(), 1);
  EXPECT_GT(j["memory_bytes"].get<double>(), 0);
  EXPECT_FALSE(j["kernel_isa"].get<std::string>().empty());
  EXPECT_TRUE(j.contains("features"));
  EXPECT_TRUE(j.contains("l3_bytes"));
  for (const char* key : {"read_bw_gbs_1t", "read_bw_gbs_all"}) {
    const double best = j[key]["best"].get<double>();
    EXPECT_GT(best, 0.1) << key;
    EXPECT_LT(best, 10000) << key;
    EXPECT_LE(j[key]["median"].get<double>(), best) << key;
  }
  for (const char* key : {"fma_gflops_1t", "fma_gflops_all", "int8_gops_1t", "int8_gops_all"}) {
    EXPECT_GT(j[key]["best"].get<double>(), 0) << key;
  }
  EXPECT_EQ(j["read_bw_gbs_1t"]["threads"], 1);
  EXPECT_EQ(j["read_bw_gbs_all"]["threads"], j["threads_all"]);
  EXPECT_FALSE(j["methods"]["read"].get<std::string>().empty());
}

TEST(Hw, TextShowsEveryLimitAndProgress) {
  auto r = RunSlimlm({"hw", "--quick", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* text :
       {"cpu", "caches", "kernel path", "read bandwidth", "GB/s", "GFLOP/s", "GOP/s"}) {
    EXPECT_THAT(r.out, HasSubstr(text));
  }
  EXPECT_THAT(r.err, HasSubstr("hw: measuring"));
  // CLI11 rejects this one; main.cc adds a line pointing to the help.
  auto bad = RunSlimlm({"hw", "--reps", "0"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_THAT(bad.err, ::testing::StartsWith("error: --reps"));
}

TEST(Bench, JsonHasOneRecordPerTestWithLlamaBenchFields) {
  const std::string threads = ThreadList();
  auto r = RunSlimlm({"bench", TinyModel(), "-p", "16", "-n", "8", "-r", "2", "-t", threads,
                      "--json", "--probe-mib", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto records = nlohmann::json::parse(r.out);
  const size_t n_threads = threads == "1,2" ? 2 : 1;
  ASSERT_EQ(records.size(), n_threads * 2);  // pp16 and tg8 at every thread count.
  std::set<std::string> tests;
  for (const auto& rec : records) {
    for (const char* key : {"build_commit",
                            "cpu_info",
                            "n_threads",
                            "type_k",
                            "type_v",
                            "n_batch",
                            "flash_attn",
                            "model_filename",
                            "model_type",
                            "model_size",
                            "model_n_params",
                            "n_prompt",
                            "n_gen",
                            "test_time",
                            "avg_ns",
                            "stddev_ns",
                            "avg_ts",
                            "stddev_ts",
                            "samples_ns",
                            "samples_ts",
                            "isa",
                            "bandwidth_gbs_before",
                            "bandwidth_gbs_after",
                            "tg_bound_ts",
                            "bound_fraction",
                            "rss_bytes"}) {
      EXPECT_TRUE(rec.contains(key)) << key;
    }
    // The weights are resident (mapped and packed), besides the probe buffer taken out.
    EXPECT_GE(rec["rss_bytes"].get<double>(), rec["model_size"].get<double>());
    EXPECT_GT(rec["avg_ts"].get<double>(), 0);
    EXPECT_EQ(rec["samples_ts"].size(), 2u);
    EXPECT_EQ(rec["samples_ns"].size(), 2u);
    EXPECT_EQ(rec["model_filename"], TinyModel());
    EXPECT_GT(rec["bandwidth_gbs_before"].get<double>(), 0);
    const bool tg = rec["n_gen"].get<int>() > 0;
    EXPECT_EQ(rec["n_prompt"].get<int>(), tg ? 0 : 16);
    EXPECT_EQ(rec["n_gen"].get<int>(), tg ? 8 : 0);
    if (tg) {
      EXPECT_GT(rec["tg_bound_ts"].get<double>(), 0);
      EXPECT_GT(rec["bound_fraction"].get<double>(), 0);
      EXPECT_GT(rec["bytes_per_token"].get<double>(), rec["model_size"].get<double>() * 0.5);
    } else {
      EXPECT_TRUE(rec["tg_bound_ts"].is_null());
    }
    tests.insert(std::to_string(rec["n_threads"].get<int>()) + (tg ? "/tg" : "/pp"));
  }
  EXPECT_EQ(tests.size(), records.size()) << "every combination once";
}

TEST(Bench, MarkdownTableAndLlamaBenchFlags) {
  auto r = RunSlimlm({"bench", "-m", TinyModel(), "-p", "8", "-n", "4", "-r", "1", "-t", "1", "-fa",
                      "0,1", "-ctk", "f16", "-ctv", "f32", "--probe-mib", "4"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("| model"));
  EXPECT_THAT(r.out, HasSubstr("tg bound t/s"));
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 2 + 4 + 2) << r.out;
  EXPECT_THAT(r.out, HasSubstr("pp8"));
  EXPECT_THAT(r.out, HasSubstr("tg4"));
  EXPECT_THAT(r.out, HasSubstr(" f16 "));
  EXPECT_THAT(r.out, HasSubstr("±"));
  auto j = RunSlimlm({"bench", TinyModel(), "-p", "0", "-n", "4", "-r", "1", "-t", "1", "-fa", "0",
                      "-ctk", "f16", "-o", "json", "--probe-mib", "0"});
  ASSERT_EQ(j.exit_code, 0) << j.err;
  auto records = nlohmann::json::parse(j.out);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["type_k"], "f16");
  EXPECT_EQ(records[0]["flash_attn"], false);
  EXPECT_EQ(records[0]["bandwidth_gbs_before"].get<double>(), 0.0) << "probes off";
  EXPECT_TRUE(records[0]["tg_bound_ts"].is_null());
}

// Calls of one operation in a --profile table (the number after its name at the start of a
// line), or -1 when its row is missing.
int64_t ProfileCalls(const std::string& text, const std::string& op) {
  const size_t at = text.find("\n" + op + " ");
  if (at == std::string::npos) return -1;
  std::istringstream row(text.substr(at + 1 + op.size()));
  int64_t calls = -1;
  row >> calls;
  return calls;
}

TEST(Bench, DepthAndProfileOfTheTimedRuns) {
  auto r = RunSlimlm({"bench", TinyModel(), "-p", "0", "-n", "4", "-d", "16", "-r", "2", "-t", "1",
                      "-o", "json", "--probe-mib", "0", "--profile"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto records = nlohmann::json::parse(r.out);  // The profile goes to stderr, not into the JSON.
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0]["n_depth"], 16);
  EXPECT_EQ(records[0]["n_gen"], 4);
  EXPECT_THAT(r.err, HasSubstr("tg4 @ d16 t=1"));
  // Two timed runs of 4 tokens, 2 layers: neither the depth's prefill nor the warm-up counts.
  EXPECT_EQ(ProfileCalls(r.err, "attention"), 2 * 4 * 2) << r.err;
  EXPECT_EQ(ProfileCalls(r.err, "rms_norm"), 2 * 4 * (2 * 2 + 1)) << r.err;
  // 7 products per layer and the output product, all f32 in the tiny model.
  EXPECT_EQ(ProfileCalls(r.err, "matmul f32"), 2 * 4 * (7 * 2 + 1)) << r.err;
}

TEST(Bench, BadFlagsAreOneLineUsageErrors) {
  const std::string& m = TinyModel();
  ExpectUsageError(RunSlimlm({"bench", m, "-t", "0"}), "-t 0");
  ExpectUsageError(RunSlimlm({"bench", m, "-t", "100000"}), "-t 100000");
  ExpectUsageError(RunSlimlm({"bench", m, "-ctk", "q4_0"}), "f32, f16 and q8_0");
  ExpectUsageError(RunSlimlm({"bench", m, "-fa", "2"}), "-fa 2");
  ExpectUsageError(RunSlimlm({"bench", m, "-p", "12x"}), "'12x' is not a whole number");
  ExpectUsageError(RunSlimlm({"bench", m, "--frobnicate"}), "unknown option '--frobnicate'");
  ExpectUsageError(RunSlimlm({"bench", m, "-o", "xml"}), "md, json and jsonl");
  ExpectUsageError(RunSlimlm({"bench", m, "-p", "0", "-n", "0"}), "nothing to measure");
  ExpectUsageError(RunSlimlm({"bench", "-p", "16"}), "no model");
  auto missing = RunSlimlm({"bench", m + ".missing", "-p", "4", "-n", "0"});
  EXPECT_EQ(missing.exit_code, 1);
}

TEST(Bench, CacheTypeAndContextLimitsOfTheModelAreExplained) {
  // The tiny preset's heads have 16 dimensions; q8_0 blocks hold 32.
  auto r = RunSlimlm({"bench", TinyModel(), "-p", "8", "-n", "0", "-ctk", "q8_0"});
  ExpectUsageError(r, "multiple of 32");
  EXPECT_THAT(r.err, HasSubstr("16"));
  // Its context holds 256 positions: past it the speed is still measured, with a warning.
  auto past = RunSlimlm({"bench", TinyModel(), "-p", "8", "-d", "300", "-n", "0", "-r", "1"});
  EXPECT_EQ(past.exit_code, 0) << past.err;
  EXPECT_THAT(past.err, HasSubstr("308 positions exceed the model's trained context of 256"));
  EXPECT_THAT(past.out, HasSubstr("pp8 @ d300"));
}

}  // namespace
}  // namespace slimlm
