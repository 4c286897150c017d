// slimlm plan on the bundled default model: the parts add up, the KV cache is exact, the options
// are ordered by size, and bad input is one line.
#include <string>

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

TEST(PlanCli, JsonPartsAddUpAndTheKvCacheIsExact) {
  testing::ProcessResult r =
      RunSlimlm({"plan", testing::DefaultModelPath(), "-c", "128", "-b", "2", "--kv-type", "q8_0",
                 "-t", "1", "--memory", "64MiB", "--json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  const nlohmann::json& e = j["estimate"];
  double sum = 0, kv = -1;
  for (const auto& p : e["memory_parts"]) {
    sum += p["bytes"].get<double>();
    if (p["name"] == "KV cache") kv = p["bytes"].get<double>();
  }
  EXPECT_DOUBLE_EQ(e["total_bytes"].get<double>(), sum);
  // 6 layers x 4 KV heads x 128 positions x 2 sequences x (K + V), 32-wide q8_0 rows of 34 bytes.
  EXPECT_EQ(kv, 6.0 * 4 * 128 * 2 * 2 * 34);
  EXPECT_EQ(j["workload"]["ctx"], 128);
  EXPECT_GT(e["tg"].get<double>(), 0);
  EXPECT_LE(e["tg"].get<double>(), e["tg_bound"].get<double>() * 2.5);  // Cache-resident model.
  // 64 MiB holds the whole 256-position context and several sequences.
  EXPECT_EQ(j["largest_ctx"], 256);
  EXPECT_GE(j["largest_batch"].get<int>(), 2);
  // f16 source, then the smaller types; q4_k smaller than q8_0.
  double q8 = 0, q4k = 0;
  for (const auto& o : j["options"]) {
    if (o["name"] == "q8_0") q8 = o["model_bytes"].get<double>();
    if (o["name"] == "q4_k") q4k = o["model_bytes"].get<double>();
    EXPECT_TRUE(o["fits"].get<bool>()) << o["name"];
  }
  EXPECT_GT(q8, q4k);
  EXPECT_GT(q4k, 0);
}

TEST(PlanCli, TextNamesEveryPart) {
  testing::ProcessResult r =
      RunSlimlm({"plan", testing::DefaultModelPath(), "--memory", "10MiB", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* part : {"weights f16", "token embedding", "KV cache", "activations", "tokenizer",
                           "runtime", "decode", "prefill", "q4_k", "does not fit"}) {
    EXPECT_THAT(r.out, HasSubstr(part));
  }
}

TEST(PlanCli, SaysWhenNoOptionFits) {
  testing::ProcessResult r =
      RunSlimlm({"plan", testing::DefaultModelPath(), "--memory", "1MiB", "-t", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("no option fits 1.00 MiB: the smallest, "));
}

TEST(PlanCli, BadInputIsOneLine) {
  ExpectOneLineError(RunSlimlm({"plan", testing::DefaultModelPath(), "--memory", "lots"}),
                     "--memory 'lots' is not a positive size");
  ExpectOneLineError(RunSlimlm({"plan", testing::DefaultModelPath(), "--memory", "-1GiB"}),
                     "--memory");
  ExpectOneLineError(RunSlimlm({"plan", testing::DefaultModelPath(), "--kv-type", "q4_0"}), "q4_0");
  ExpectOneLineError(RunSlimlm({"plan", "/nonexistent/model.gguf"}), "/nonexistent/model.gguf");
  ExpectOneLineError(RunSlimlm({"plan", testing::DefaultModelPath(), "--hw", "/nonexistent.json"}),
                     "/nonexistent.json");
}

}  // namespace
}  // namespace slimlm
