// slimlm bench: pp and tg tokens/s over threads, batch sizes, KV-cache types and attention
// kinds, like llama-bench, each figure beside the bandwidth measured just before and after it.
#include <cstdio>
#include <map>

#include <fmt/core.h>

#include "slimlm/core/file.h"
#include "slimlm/core/memory_usage.h"
#include "slimlm/core/progress.h"
#include "tools/bench_common.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/profile_report.h"

namespace slimlm::tools {
namespace {

void Emit(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

Status Bench(BenchArgs& args) {
  SLIMLM_ASSIGN_OR_RETURN(std::vector<BenchTest> tests, PlanBenchTests(args));
  const int64_t runtime_rss = ReadMemoryUsage().rss_bytes;
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, "", false));
  SLIMLM_RETURN_IF_ERROR(CheckTestsFitModel(*model, tests));
  const ModelCosts costs = ComputeModelCosts(*model, args.model);
  BenchRunner runner(*model, costs, args);
  SLIMLM_RETURN_IF_ERROR(runner.Init());
  if (args.output == "md") Emit(MarkdownHeader());
  nlohmann::json records = nlohmann::json::array();
  std::map<int, ProfileLimits> limits;  // --profile: measured once per thread count.
  for (size_t i = 0; i < tests.size(); ++i) {
    const BenchTest& t = tests[i];
    Result<BenchRecord> record = [&] {
      Progress progress(
          fmt::format("bench {}/{}: {} t={} {}/{} fa={}", i + 1, tests.size(), t.Name(), t.threads,
                      DTypeName(t.type_k), DTypeName(t.type_v), t.flash_attn ? 1 : 0),
          args.reps + (args.no_warmup ? 0 : 1), "runs");
      return runner.Run(t, [&](int64_t done, int64_t) { progress.Update(done); });
    }();
    if (!record.ok()) return record.status().WithContext(t.Name());
    record->runtime_rss_bytes = runtime_rss;
    if (args.output == "md") Emit(MarkdownRow(costs, *record));
    if (args.output == "jsonl") Emit(RecordJson(costs, *record).dump() + "\n");
    records.push_back(RecordJson(costs, *record));
    if (args.profile) {
      // On stderr, beside the progress lines, so that the table or JSON on stdout stays whole.
      if (!limits.contains(t.threads)) {
        SLIMLM_ASSIGN_OR_RETURN(limits[t.threads], MeasureProfileLimits(t.threads));
      }
      const std::string title =
          fmt::format("{} t={} {}/{} fa={}", t.Name(), t.threads, DTypeName(t.type_k),
                      DTypeName(t.type_v), t.flash_attn ? 1 : 0);
      fmt::print(stderr, "{}", FormatProfile(title, record->profile, limits[t.threads]));
    }
  }
  if (args.output == "json") Emit(records.dump(2) + "\n");
  if (!args.json_file.empty()) {
    SLIMLM_RETURN_IF_ERROR(WriteFileAtomically(args.json_file, records.dump(2) + "\n"));
  }
  if (args.output == "md") {
    Emit(fmt::format(
        "\nt/s: mean ± sample standard deviation of {} runs. GB/s: read bandwidth probed with "
        "the test's threads right before and after it ({}). tg bound: the mean of those two "
        "divided by the bytes one token reads (weights {} + the KV cache at the average "
        "position).\n",
        args.reps,
        args.probe_mib > 0 ? fmt::format("{} MiB, best of {}", args.probe_mib, args.probe_reps)
                           : "probes off",
        FormatBytes(costs.weight_bytes_per_token)));
  }
  return Status::Ok();
}

}  // namespace

CommandSpec BenchCommand() {
  return {
      "bench", "Measure prompt (pp) and generation (tg) tokens/s against the bandwidth bound",
      [](CLI::App* app) {
        auto args = std::make_shared<BenchArgs>();
        app->footer(
            "usage: slimlm bench MODEL [options]. Lists are comma-separated (-t 1,2); every "
            "combination is measured. llama-bench's -fa, -ctk and -ctv are accepted as "
            "written.\n");
        app->add_option("-m,--model", args->model, "Model: GGUF file, HF folder or llama2.c .bin");
        app->add_option("-p,--n-prompt", args->n_prompt, "Prompt lengths (0: no pp test)")
            ->capture_default_str();
        app->add_option("-d,--n-depth", args->n_depth,
                        "Positions already in the KV cache when each test starts")
            ->capture_default_str();
        app->add_option("-n,--n-gen", args->n_gen, "Generation lengths (0: no tg test)")
            ->capture_default_str();
        app->add_option("-t,--threads", args->threads,
                        "Threads, 1 to the usable CPUs (default: the physical cores)");
        app->add_option("-b,--batch-size", args->n_batch,
                        "Most tokens per forward step (default: the library's, 256)");
        app->add_option("--cache-type-k", args->type_k, "Key cache types: f32, f16, q8_0 (-ctk)");
        app->add_option("--cache-type-v", args->type_v, "Value cache types: f32, f16, q8_0 (-ctv)");
        app->add_option("--flash-attn", args->flash_attn, "Flash attention: 0, 1 (-fa)");
        app->add_option("-r,--repetitions", args->reps, "Timed runs of every test")
            ->check(CLI::Range(1, 100000))
            ->capture_default_str();
        app->add_option("-o,--output", args->output, "Output: md, json, jsonl")
            ->capture_default_str();
        app->add_flag("--json", args->json, "Same as -o json");
        app->add_option("--json-file", args->json_file,
                        "Also write the JSON records to this file (with -o md: table and data)");
        app->add_option("--probe-mib", args->probe_mib,
                        "MiB read by the bandwidth probe around each test (0: no probes)")
            ->check(CLI::Range(int64_t{0}, int64_t{1} << 20))
            ->capture_default_str();
        app->add_option("--probe-reps", args->probe_reps, "Reads of the probe buffer per probe")
            ->check(CLI::Range(1, 1000))
            ->capture_default_str();
        app->add_option("--seed", args->seed, "Seed of the random token ids")
            ->capture_default_str();
        app->add_flag("--no-warmup", args->no_warmup, "Skip the warm-up run of every test");
        app->add_flag("--profile", args->profile,
                      "After each test, time, bytes and operations per operation type against "
                      "the measured limits (on stderr)");
        app->allow_extras();
        return [args, app] {
          args->extras = app->remaining();
          return Bench(*args);
        };
      }};
}

}  // namespace slimlm::tools
