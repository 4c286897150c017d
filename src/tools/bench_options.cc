// slimlm bench: flags to tests.
#include <algorithm>
#include <charconv>

#include <fmt/core.h>

#include "slimlm/model/context.h"
#include "tools/bench_common.h"

namespace slimlm::tools {
namespace {

// Splits "a,b,c"; an empty text gives {fallback}.
std::vector<std::string> SplitList(const std::string& text, const std::string& fallback) {
  std::vector<std::string> items;
  if (text.empty()) return {fallback};
  size_t begin = 0;
  while (true) {
    const size_t comma = text.find(',', begin);
    items.push_back(
        text.substr(begin, comma == std::string::npos ? std::string::npos : comma - begin));
    if (comma == std::string::npos) break;
    begin = comma + 1;
  }
  return items;
}

Result<std::vector<int64_t>> ParseIntList(const std::string& flag, const std::string& text,
                                          int64_t fallback, int64_t min, int64_t max) {
  std::vector<int64_t> values;
  for (const std::string& item : SplitList(text, std::to_string(fallback))) {
    int64_t value = 0;
    const auto [end, error] = std::from_chars(item.data(), item.data() + item.size(), value);
    if (item.empty() || error != std::errc() || end != item.data() + item.size()) {
      return InvalidArgumentError("{} '{}': '{}' is not a whole number", flag, text, item);
    }
    if (value < min || value > max) {
      return InvalidArgumentError("{} {}: must be between {} and {}{}", flag, value, min, max,
                                  flag == "-t" ? " (the CPUs this process may use)" : "");
    }
    values.push_back(value);
  }
  return values;
}

Result<std::vector<DType>> ParseKvTypes(const std::string& flag, const std::string& text,
                                        DType fallback) {
  std::vector<DType> types;
  for (const std::string& item : SplitList(text, std::string(DTypeName(fallback)))) {
    std::optional<DType> type = ParseDType(item);
    if (!type || (*type != DType::kF32 && *type != DType::kF16 && *type != DType::kQ8_0)) {
      return InvalidArgumentError("{} '{}': the KV cache types are f32, f16 and q8_0", flag, item);
    }
    types.push_back(*type);
  }
  return types;
}

// CLI11 2.1 refuses option names like -fa with one dash and several letters, so llama-bench's
// spellings reach us among the extras, in order, together with a positional MODEL.
Status ReadExtras(BenchArgs& args) {
  const std::map<std::string, std::string*> llama_bench_flags = {
      {"-fa", &args.flash_attn}, {"-ctk", &args.type_k}, {"-ctv", &args.type_v}};
  std::string positional;
  for (size_t i = 0; i < args.extras.size(); ++i) {
    const std::string& item = args.extras[i];
    auto flag = llama_bench_flags.find(item);
    if (flag != llama_bench_flags.end()) {
      if (i + 1 == args.extras.size()) return InvalidArgumentError("{} needs a value", item);
      *flag->second = args.extras[++i];
    } else if (item.size() > 1 && item[0] == '-') {
      return InvalidArgumentError("unknown option '{}' (see 'slimlm help bench')", item);
    } else if (!positional.empty()) {
      return InvalidArgumentError("unexpected argument '{}' (one model only, and it is '{}')", item,
                                  positional);
    } else {
      positional = item;
    }
  }
  if (!positional.empty() && !args.model.empty()) {
    return InvalidArgumentError("give the model once: -m {} or {}", args.model, positional);
  }
  if (!positional.empty()) args.model = positional;
  if (args.model.empty()) return InvalidArgumentError("no model: give MODEL or -m MODEL");
  return Status::Ok();
}

}  // namespace

std::string BenchTest::Name() const {
  std::string name = n_prompt > 0 ? fmt::format("pp{}", n_prompt) : fmt::format("tg{}", n_gen);
  return n_depth > 0 ? fmt::format("{} @ d{}", name, n_depth) : name;
}

Result<std::vector<BenchTest>> PlanBenchTests(BenchArgs& args) {
  SLIMLM_RETURN_IF_ERROR(ReadExtras(args));
  if (args.json) args.output = "json";
  if (args.output != "md" && args.output != "json" && args.output != "jsonl") {
    return InvalidArgumentError("-o '{}': the formats are md, json and jsonl", args.output);
  }
  const ContextOptions defaults;
  const int cpus = kernels::UsableCpuCount();
  constexpr int64_t kMaxTokens = int64_t{1} << 20;
  SLIMLM_ASSIGN_OR_RETURN(auto prompts, ParseIntList("-p", args.n_prompt, 512, 0, kMaxTokens));
  SLIMLM_ASSIGN_OR_RETURN(auto gens, ParseIntList("-n", args.n_gen, 128, 0, kMaxTokens));
  SLIMLM_ASSIGN_OR_RETURN(auto depths, ParseIntList("-d", args.n_depth, 0, 0, kMaxTokens));
  SLIMLM_ASSIGN_OR_RETURN(
      auto threads, ParseIntList("-t", args.threads, std::min(PhysicalCoreCount(), cpus), 1, cpus));
  SLIMLM_ASSIGN_OR_RETURN(auto batches,
                          ParseIntList("-b", args.n_batch, defaults.n_batch, 1, kMaxTokens));
  SLIMLM_ASSIGN_OR_RETURN(auto fas,
                          ParseIntList("-fa", args.flash_attn, defaults.flash_attention, 0, 1));
  SLIMLM_ASSIGN_OR_RETURN(auto types_k, ParseKvTypes("-ctk", args.type_k, defaults.kv_type_k));
  SLIMLM_ASSIGN_OR_RETURN(auto types_v, ParseKvTypes("-ctv", args.type_v, defaults.kv_type_v));
  std::vector<BenchTest> tests;
  for (int64_t t : threads) {
    for (int64_t b : batches) {
      for (DType k : types_k) {
        for (DType v : types_v) {
          for (int64_t fa : fas) {
            for (int64_t d : depths) {
              BenchTest base{static_cast<int>(t), b, k, v, fa != 0, 0, 0, d};
              // As llama-bench: a length of 0 means no such test.
              for (int64_t p : prompts) {
                if (p == 0) continue;
                tests.push_back(base);
                tests.back().n_prompt = p;
              }
              for (int64_t n : gens) {
                if (n == 0) continue;
                tests.push_back(base);
                tests.back().n_gen = n;
              }
            }
          }
        }
      }
    }
  }
  if (tests.empty()) return InvalidArgumentError("nothing to measure: every -p and -n is 0");
  return tests;
}

Status CheckTestsFitModel(const Model& model, const std::vector<BenchTest>& tests) {
  const int64_t n_ctx = model.config().context_length;
  std::vector<std::pair<DType, DType>> checked;
  bool warned = false;
  for (const BenchTest& t : tests) {
    // Past the trained context RoPE keeps rotating, so speed is still measurable; quality is
    // not what this measures, so it is a warning, not an error (llama.cpp does the same).
    const int64_t positions = t.n_depth + t.n_prompt + t.n_gen;
    if (n_ctx > 0 && positions > n_ctx && !warned) {
      fmt::print(stderr, "warning: {}: {} positions exceed the model's trained context of {}\n",
                 t.Name(), positions, n_ctx);
      warned = true;
    }
    // A one-position context is enough for Context::Create to check the cache types.
    if (std::find(checked.begin(), checked.end(), std::pair(t.type_k, t.type_v)) != checked.end()) {
      continue;
    }
    checked.emplace_back(t.type_k, t.type_v);
    ContextOptions options;
    options.n_ctx = 1;
    options.n_threads = 1;
    options.kv_type_k = t.type_k;
    options.kv_type_v = t.type_v;
    Result<std::unique_ptr<Context>> ctx = Context::Create(model, options);
    if (!ctx.ok()) {
      return ctx.status().WithContext(
          fmt::format("-ctk {} -ctv {}", DTypeName(t.type_k), DTypeName(t.type_v)));
    }
  }
  return Status::Ok();
}

}  // namespace slimlm::tools
