// slimlm plan: before running anything, what a model will cost on this machine (memory by part,
// decode and prefill speed), how large a context and batch fit a memory budget, and which
// compression reaches it.
#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/formats/model_file.h"
#include "slimlm/plan/candidates.h"
#include "slimlm/plan/estimate.h"
#include "slimlm/plan/layout.h"
#include "slimlm/plan/machine.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct PlanArgs {
  std::string model;
  std::string memory;  // Empty: no budget.
  int64_t ctx = 0;
  int64_t batch = 1;
  std::string kv_type = "f16";
  int threads = 0;
  std::string hw;  // slimlm hw --json-file output; empty: measure now.
  bool json = false;
};

nlohmann::json EstimateJson(const plan::RunEstimate& e) {
  nlohmann::json parts = nlohmann::json::array();
  for (const plan::MemoryPart& p : e.parts) {
    parts.push_back({{"name", p.name}, {"detail", p.detail}, {"bytes", p.bytes}});
  }
  return {{"ctx", e.ctx},
          {"memory_parts", parts},
          {"total_bytes", e.total_bytes},
          {"model_bytes", e.model_bytes()},
          {"weight_bytes_per_token", e.weight_bytes_per_token},
          {"kv_bytes_per_token", e.kv_bytes_per_token},
          {"tg_bound", e.tg_bound},
          {"tg", e.tg},
          {"tg_full_ctx", e.tg_full_ctx},
          {"pp", e.pp},
          {"cache_resident", e.cache_resident}};
}

Status Plan(const PlanArgs& args) {
  // Before anything is loaded: what the binary and its libraries hold.
  const uint64_t runtime = plan::RuntimeResidentBytes();
  double budget = 0;
  if (!args.memory.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(budget, ParseByteSize(args.memory, "--memory"));
  }
  SLIMLM_ASSIGN_OR_RETURN(DType kv_type, ParseKvType(args.kv_type));
  const int threads = ResolveThreads(args.threads);
  LoadOptions load;
  load.require_tokenizer = false;
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, LoadModel(args.model, load));
  SLIMLM_ASSIGN_OR_RETURN(plan::ModelLayout layout, plan::ModelLayout::FromStore(store));
  const ModelConfig& c = layout.config;
  if (!IsRowLengthValid(kv_type, c.head_dim)) {
    return InvalidArgumentError(
        "--kv-type {} needs a head dimension that is a multiple of {}, "
        "this model's is {}",
        DTypeName(kv_type), Traits(kv_type).block_size, c.head_dim);
  }
  Result<plan::MachineLimits> machine =
      args.hw.empty() ? plan::MeasureMachine(threads) : plan::MachineFromHwJson(args.hw, threads);
  if (!machine.ok()) return machine.status();
  machine->runtime_bytes = runtime;
  plan::MeasureFaultWindow(store, &*machine);
  plan::Workload workload;
  workload.ctx = args.ctx;
  workload.batch = args.batch;
  workload.kv_type = kv_type;
  SLIMLM_ASSIGN_OR_RETURN(plan::RunEstimate e, plan::EstimateRun(layout, workload, *machine));

  // The compression options, each estimated at the same workload.
  plan::CandidateOptions options;
  options.calibrated = false;  // Same layouts as the plain ones.
  options.kv_q8 = false;
  struct Option {
    std::string name;
    plan::RunEstimate estimate;
    uint64_t file_bytes;
  };
  std::vector<Option> rows;
  for (const plan::Candidate& cand : plan::BuildCandidates(layout, store, options)) {
    SLIMLM_ASSIGN_OR_RETURN(plan::RunEstimate ce,
                            plan::EstimateRun(cand.layout, workload, *machine));
    rows.push_back({cand.kind == plan::Candidate::Kind::kPrune ? "2:4 pruned f16_nm" : cand.name,
                    ce, cand.layout.TensorBytes()});
    if (cand.kind == plan::Candidate::Kind::kPrune) break;  // One line for both methods.
  }
  if (kv_type != DType::kQ8_0 && c.head_dim % 32 == 0) {
    plan::Workload q8 = workload;
    q8.kv_type = DType::kQ8_0;
    SLIMLM_ASSIGN_OR_RETURN(plan::RunEstimate ce, plan::EstimateRun(layout, q8, *machine));
    rows.push_back({"as is, kv q8_0", ce, layout.TensorBytes()});
  }
  const int64_t max_ctx = budget > 0 ? plan::LargestContext(layout, workload, *machine, budget) : 0;
  const int64_t max_batch = budget > 0 ? plan::LargestBatch(layout, workload, *machine, budget) : 0;

  if (args.json) {
    nlohmann::json out = {
        {"model", args.model},
        {"n_params", layout.ParameterCount()},
        {"file_tensor_bytes", layout.TensorBytes()},
        {"machine",
         {{"threads", machine->threads},
          {"bandwidth_gbs", machine->bandwidth_gbs},
          {"fma_gflops", machine->fma_gflops},
          {"int8_gops", machine->int8_gops},
          {"llc_bytes", machine->llc_bytes},
          {"runtime_bytes", machine->runtime_bytes},
          {"source", machine->source}}},
        {"workload", {{"ctx", e.ctx}, {"batch", args.batch}, {"kv_type", DTypeName(kv_type)}}},
        {"estimate", EstimateJson(e)},
        {"memory_budget_bytes", budget > 0 ? nlohmann::json(budget) : nullptr},
        {"largest_ctx", budget > 0 ? nlohmann::json(max_ctx) : nullptr},
        {"largest_batch", budget > 0 ? nlohmann::json(max_batch) : nullptr}};
    nlohmann::json opts = nlohmann::json::array();
    for (const Option& o : rows) {
      opts.push_back(
          {{"name", o.name},
           {"file_bytes", o.file_bytes},
           {"model_bytes", o.estimate.model_bytes()},
           {"total_bytes", o.estimate.total_bytes},
           {"tg", o.estimate.tg},
           {"pp", o.estimate.pp},
           {"fits", budget > 0 ? nlohmann::json(o.estimate.model_bytes() <= budget) : nullptr}});
    }
    out["options"] = opts;
    fmt::print("{}\n", out.dump(2));
    return Status::Ok();
  }
  fmt::print("model       {}: {} parameters, {} in tensors, mostly {}\n", args.model,
             layout.ParameterCount(), FormatBytes(static_cast<double>(layout.TensorBytes())),
             DTypeName(layout.DominantType()));
  fmt::print(
      "machine     {} thread{}: read {:.1f} GB/s, fp32 {:.0f} GFLOP/s, int8 {:.0f} GOP/s "
      "({})\n",
      machine->threads, machine->threads == 1 ? "" : "s", machine->bandwidth_gbs,
      machine->fma_gflops, machine->int8_gops, machine->source);
  fmt::print("\nmemory at context {} x batch {} (KV {}):\n", e.ctx, args.batch, DTypeName(kv_type));
  for (const plan::MemoryPart& p : e.parts) {
    fmt::print("  {:<16} {:>12}  {}\n", p.name, FormatBytes(p.bytes), p.detail);
  }
  fmt::print("  {:<16} {:>12}  (the model's part, less the runtime: {})\n", "total",
             FormatBytes(e.total_bytes), FormatBytes(e.model_bytes()));
  fmt::print(
      "\ndecode      {} per token; bound {:.1f} tokens/s, expected {:.1f} tokens/s "
      "({:.1f} with the cache full){}\n",
      FormatBytes(e.weight_bytes_per_token + e.kv_bytes_per_token), e.tg_bound, e.tg, e.tg_full_ctx,
      e.cache_resident ? "; the weights fit in the last-level cache" : "");
  fmt::print("prefill     expected {:.0f} tokens/s (a prompt of {} tokens)\n", e.pp, e.ctx);
  if (budget > 0) {
    fmt::print("\nbudget      {} of model memory: ", FormatBytes(budget));
    if (e.model_bytes() <= budget) {
      fmt::print(
          "fits; the largest context at batch {} is {}, the largest batch at context {} "
          "is {}\n",
          args.batch, max_ctx, e.ctx, max_batch);
    } else {
      fmt::print("does not fit as it is ({} needed)\n", FormatBytes(e.model_bytes()));
    }
  }
  fmt::print("\n{:<22} {:>12} {:>14} {:>12} {:>10}{}\n", "option", "file", "model memory",
             "tg (t/s)", "pp (t/s)", budget > 0 ? "  fits" : "");
  const Option* smallest = nullptr;
  for (const Option& o : rows) {
    if (smallest == nullptr || o.estimate.model_bytes() < smallest->estimate.model_bytes()) {
      smallest = &o;
    }
    fmt::print("{:<22} {:>12} {:>14} {:>12.1f} {:>10.0f}{}\n", o.name,
               FormatBytes(static_cast<double>(o.file_bytes)),
               FormatBytes(o.estimate.model_bytes()), o.estimate.tg, o.estimate.pp,
               budget > 0 ? (o.estimate.model_bytes() <= budget ? "  yes" : "  no") : "");
  }
  if (budget > 0 && smallest != nullptr && smallest->estimate.model_bytes() > budget) {
    fmt::print(
        "\nno option fits {}: the smallest, {}, needs {} at context {}; a shorter "
        "context (-c) needs less\n",
        FormatBytes(budget), smallest->name, FormatBytes(smallest->estimate.model_bytes()), e.ctx);
  }
  return Status::Ok();
}

}  // namespace

CommandSpec PlanCommand() {
  return {"plan",
          "Estimate before running: memory by part, decode and prefill speed, what fits a budget",
          [](CLI::App* app) {
            auto args = std::make_shared<PlanArgs>();
            app->add_option("model", args->model, "Model: GGUF file, HF folder or llama2.c .bin")
                ->required();
            app->add_option("--memory", args->memory,
                            "Memory budget for the model (weights, KV cache, activations, "
                            "tokenizer; not the binary), e.g. 4GiB");
            app->add_option("-c,--ctx", args->ctx, "Context positions (0: the model's)")
                ->check(CLI::NonNegativeNumber);
            app->add_option("-b,--batch", args->batch, "Sequences, each with its own KV cache")
                ->check(CLI::PositiveNumber);
            app->add_option("--kv-type", args->kv_type, "KV cache type: f32, f16 or q8_0")
                ->capture_default_str();
            AddThreadsOption(app, &args->threads);
            app->add_option("--hw", args->hw,
                            "Limits from `slimlm hw --json-file F` instead of quick probes");
            app->add_flag("--json", args->json, "Print JSON");
            return [args] { return Plan(*args); };
          }};
}

}  // namespace slimlm::tools
