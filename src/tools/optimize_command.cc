// slimlm optimize: the main job. Builds the candidate compression plans of a model, estimates
// each with `plan`'s model and drops the hopeless ones, then produces and measures the rest, each
// in a child process of its own (file size, peak resident memory and pp/tg with `bench`,
// perplexity and KL divergence against the source with `eval kld`), keeps the Pareto front,
// writes the best model that meets the budget and a report (Markdown and HTML).
//
// Every measurement is cached in the work folder under a key of everything it depends on, so an
// interrupted run resumes and a re-run with another budget reuses all of them.
#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

#include "slimlm/core/file.h"
#include "slimlm/core/hash.h"
#include "slimlm/core/progress.h"
#include "slimlm/formats/model_file.h"
#include "slimlm/plan/candidates.h"
#include "slimlm/plan/estimate.h"
#include "slimlm/plan/layout.h"
#include "slimlm/plan/machine.h"
#include "slimlm/plan/pareto.h"
#include "slimlm/plan/report.h"
#include "tools/child_process.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

namespace fs = std::filesystem;

// A candidate whose estimate misses a constraint by more than these factors is not produced:
// the estimates come within 10% (memory) and 25% (tg) of the measurements.
constexpr double kHopelessMemory = 1.3;
constexpr double kHopelessTg = 1.5;

struct OptimizeArgs {
  std::string model;
  std::string data;
  std::string calib;  // Empty: calibrated candidates are left out.
  std::string memory;
  double min_tg = 0;
  double max_ppl_increase = -1;  // Percent; negative: not given.
  std::string output;            // Empty: <work>/best.gguf
  std::string work;              // Empty: <output>.work
  int64_t ctx = 256;
  int64_t chunks = 20;
  int64_t n_gen = 32;
  int reps = 3;
  int threads = 0;
  std::string types;  // Comma-separated; empty: all.
  bool no_prune = false;
  bool no_kv_q8 = false;
  bool json = false;
};

uint64_t FileStamp(const std::string& path) {
  std::error_code ec;
  const auto size = fs::file_size(path, ec);
  const auto time = fs::last_write_time(path, ec).time_since_epoch().count();
  uint64_t h = HashBytes(path.data(), path.size());
  h = HashBytes(&size, sizeof(size), h);
  return HashBytes(&time, sizeof(time), h);
}

std::string Hex(uint64_t h) { return fmt::format("{:016x}", h); }

// One candidate's measurements, as cached.
struct Measurement {
  double file_bytes = NAN, memory_bytes = NAN, peak_bytes = NAN;
  double pp = NAN, tg = NAN;
  int threads = 0;  // The thread count tg was reached with.
  std::map<int, double> tg_by_threads;
  double ppl = NAN, delta_ppl_percent = NAN, kld = NAN, top1 = NAN;
  std::string error;  // Production or measurement failed.
};

nlohmann::json ToJson(const Measurement& r) {
  auto num = [](double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(); };
  nlohmann::json by_threads = nlohmann::json::object();
  for (const auto& [t, ts] : r.tg_by_threads) by_threads[std::to_string(t)] = ts;
  return {{"file_bytes", num(r.file_bytes)},
          {"memory_bytes", num(r.memory_bytes)},
          {"threads", r.threads},
          {"tg_by_threads", by_threads},
          {"peak_bytes", num(r.peak_bytes)},
          {"pp", num(r.pp)},
          {"tg", num(r.tg)},
          {"ppl", num(r.ppl)},
          {"delta_ppl_percent", num(r.delta_ppl_percent)},
          {"kld", num(r.kld)},
          {"top1", num(r.top1)},
          {"error", r.error}};
}

Measurement FromJson(const nlohmann::json& j) {
  auto num = [&](const char* key) {
    return j.contains(key) && j[key].is_number() ? j[key].get<double>() : NAN;
  };
  Measurement r;
  r.file_bytes = num("file_bytes");
  r.memory_bytes = num("memory_bytes");
  r.peak_bytes = num("peak_bytes");
  r.pp = num("pp");
  r.tg = num("tg");
  r.ppl = num("ppl");
  r.delta_ppl_percent = num("delta_ppl_percent");
  r.kld = num("kld");
  r.top1 = num("top1");
  r.error = j.value("error", "");
  r.threads = j.value("threads", 0);
  if (j.contains("tg_by_threads") && j["tg_by_threads"].is_object()) {
    for (const auto& [t, ts] : j["tg_by_threads"].items()) r.tg_by_threads[std::stoi(t)] = ts;
  }
  return r;
}

class Optimizer {
 public:
  explicit Optimizer(const OptimizeArgs& args) : args_(args) {}
  Status Run();

 private:
  Status Prepare();
  Result<std::string> ModelFor(const plan::Candidate& c);
  Result<Measurement> Measure(const plan::Candidate& c);
  Status EnsureReference();
  std::string CacheKey(const plan::Candidate& c) const;
  // "1" or "1,N": tg is measured with one thread and with all of them.
  std::string ThreadList() const { return threads_ == 1 ? "1" : fmt::format("1,{}", threads_); }
  // The thread count a candidate runs with: the fewest that reach --min-tg, else the fastest.
  void PickThreads(Measurement* r) const;

  const OptimizeArgs& args_;
  std::string output_, work_, log_, ref_logits_;
  int threads_ = 1;
  plan::Budget budget_;
  std::vector<DType> types_;
  uint64_t models_fingerprint_ = 0;  // What the candidate models depend on.
  uint64_t fingerprint_ = 0;         // What a measurement depends on besides the candidate.
};

Status Optimizer::Prepare() {
  if (!IsRegularFile(args_.data)) {
    return InvalidArgumentError(
        "--data {}: no such file: the evaluation text is needed to "
        "measure what compression costs",
        args_.data);
  }
  if (!args_.calib.empty() && !IsRegularFile(args_.calib)) {
    return InvalidArgumentError("--calib {}: no such file", args_.calib);
  }
  if (!args_.memory.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(budget_.memory_bytes, ParseByteSize(args_.memory, "--memory"));
  }
  if (args_.min_tg > 0) budget_.min_tg = args_.min_tg;
  if (args_.max_ppl_increase >= 0) budget_.max_delta_ppl_percent = args_.max_ppl_increase;
  for (size_t start = 0; start < args_.types.size();) {
    size_t end = args_.types.find(',', start);
    if (end == std::string::npos) end = args_.types.size();
    const std::string name = args_.types.substr(start, end - start);
    const std::optional<DType> type = ParseDType(name);
    static const DType kQuantizable[] = {DType::kF16,  DType::kBF16, DType::kQ8_0,
                                         DType::kQ6_K, DType::kQ4_K, DType::kQ4_0};
    if (!type || std::find(std::begin(kQuantizable), std::end(kQuantizable), *type) ==
                     std::end(kQuantizable)) {
      return InvalidArgumentError("--types: '{}' is not one of f16, bf16, q8_0, q6_k, q4_k, q4_0",
                                  name);
    }
    types_.push_back(*type);
    start = end + 1;
  }
  if (args_.n_gen >= args_.ctx) {
    return InvalidArgumentError("--n-gen {} must be below the context {}", args_.n_gen, args_.ctx);
  }
  threads_ = ResolveThreads(args_.threads);
  output_ = args_.output;
  if (output_.empty()) {
    output_ =
        (fs::path("out") / (fs::path(args_.model).stem().string() + ".optimized.gguf")).string();
  }
  work_ = args_.work.empty() ? output_ + ".work" : args_.work;
  std::error_code ec;
  if (args_.output.empty()) fs::create_directories(fs::path(output_).parent_path(), ec);
  SLIMLM_RETURN_IF_ERROR(CheckWritable(output_));
  log_ = (fs::path(work_) / "children.log").string();
  // Each thing made or measured is keyed by what it depends on, so that a re-run with other
  // speed settings (-t, -r, --n-gen) reuses the models and the reference.
  auto hash = [](const std::string& s) { return HashBytes(s.data(), s.size()); };
  const std::string model = Hex(FileStamp(args_.model)), data = Hex(FileStamp(args_.data));
  const std::string calib = args_.calib.empty() ? std::string("-") : Hex(FileStamp(args_.calib));
  models_fingerprint_ =
      hash(fmt::format("{}|{}|calib-ctx={}|{}", model, calib, args_.ctx, kSlimlmVersion));
  const uint64_t reference = hash(fmt::format("{}|{}|ctx={}|chunks={}|{}", model, data, args_.ctx,
                                              args_.chunks, kSlimlmVersion));
  fingerprint_ = hash(fmt::format("{}|{}|{}|gen={}|reps={}|t={}", Hex(models_fingerprint_),
                                  Hex(reference), data, args_.n_gen, args_.reps, threads_));
  ref_logits_ = (fs::path(work_) / fmt::format("reference-{}.logits", Hex(reference))).string();
  return Status::Ok();
}

std::string Optimizer::CacheKey(const plan::Candidate& c) const {
  const std::string what = fmt::format("{}|{}", c.model_key, DTypeName(c.kv_type));
  return Hex(HashBytes(what.data(), what.size(), fingerprint_));
}

Result<std::string> Optimizer::ModelFor(const plan::Candidate& c) {
  if (c.kind == plan::Candidate::Kind::kSource) return args_.model;
  const std::string path = (fs::path(work_) / "models" /
                            fmt::format("{}-{}.gguf", c.model_key, Hex(models_fingerprint_)))
                               .string();
  if (IsRegularFile(path)) return path;  // Made by an earlier run (files appear atomically).
  SLIMLM_RETURN_IF_ERROR(
      RunSlimlmChild(c.ProduceArgs(args_.model, path, args_.calib, args_.ctx, 16), log_).status());
  return path;
}

void Optimizer::PickThreads(Measurement* r) const {
  r->tg = NAN;
  r->threads = 0;
  for (const auto& [t, ts] : r->tg_by_threads) {  // Fewest threads first.
    if (budget_.min_tg && ts >= *budget_.min_tg) {
      r->tg = ts;
      r->threads = t;
      return;
    }
    if (!(ts <= r->tg)) {
      r->tg = ts;
      r->threads = t;
    }
  }
}

Status Optimizer::EnsureReference() {
  if (IsRegularFile(ref_logits_)) return Status::Ok();
  return RunSlimlmChild(
             {"eval", "kld", args_.model, "--data", args_.data, "-c", std::to_string(args_.ctx),
              "--chunks", std::to_string(args_.chunks), "--save-logits", ref_logits_},
             log_)
      .status();
}

Result<Measurement> Optimizer::Measure(const plan::Candidate& c) {
  SLIMLM_ASSIGN_OR_RETURN(std::string path, ModelFor(c));
  Measurement r;
  r.file_bytes = static_cast<double>(DiskBytes(path));
  const std::string kv(DTypeName(c.kv_type));
  SLIMLM_ASSIGN_OR_RETURN(
      std::string bench,
      RunSlimlmChild(
          {"bench", path, "-p", std::to_string(args_.ctx - args_.n_gen), "-n",
           std::to_string(args_.n_gen), "-t", ThreadList(), "-r", std::to_string(args_.reps),
           "--probe-mib", "0", "-ctk", kv, "-ctv", kv, "-o", "json"},
          log_));
  SLIMLM_ASSIGN_OR_RETURN(
      std::string kld, RunSlimlmChild({"eval", "kld", path, "--ref-logits", ref_logits_, "--data",
                                       args_.data, "-c", std::to_string(args_.ctx), "--chunks",
                                       std::to_string(args_.chunks), "--kv-type", kv, "--json"},
                                      log_));
  try {
    const nlohmann::json records = nlohmann::json::parse(bench);
    double peak = 0, runtime = 0;
    for (const nlohmann::json& rec : records) {
      peak = std::max(peak, rec.at("peak_rss_bytes").get<double>());
      runtime = rec.at("runtime_rss_bytes").get<double>();
      const int t = rec.at("n_threads").get<int>();
      const double ts = rec.at("avg_ts").get<double>();
      if (rec.at("n_gen").get<int64_t>() > 0) r.tg_by_threads[t] = ts;
      if (rec.at("n_prompt").get<int64_t>() > 0 && t == threads_) r.pp = ts;
    }
    PickThreads(&r);
    r.peak_bytes = peak;
    r.memory_bytes = peak - runtime;
    const nlohmann::json q = nlohmann::json::parse(kld);
    r.ppl = q.at("ppl_model").get<double>();
    r.delta_ppl_percent =
        100.0 * q.at("delta_ppl").get<double>() / q.at("ppl_reference").get<double>();
    r.kld = q.at("kld_mean").get<double>();
    r.top1 = q.at("top1_agreement").get<double>();
  } catch (const std::exception& e) {
    return InternalError("unexpected output from a measurement of {}: {}", c.name, e.what());
  }
  return r;
}

std::string FormatBudget(const plan::Budget& b) {
  std::string out;
  auto add = [&](const std::string& s) { out += (out.empty() ? "" : ", ") + s; };
  if (b.memory_bytes) add(fmt::format("memory <= {}", FormatBytes(*b.memory_bytes)));
  if (b.min_tg) add(fmt::format("tg >= {:.1f} t/s", *b.min_tg));
  if (b.max_delta_ppl_percent) add(fmt::format("ΔPPL <= {:.2f}%", *b.max_delta_ppl_percent));
  return out.empty() ? "none (the best quality is chosen)" : out;
}

Status CopyFileAtomically(const std::string& from, const std::string& to) {
  const std::string tmp = to + ".tmp";
  std::error_code ec;
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, to, ec);
  if (ec) {
    fs::remove(tmp, ec);
    return IoError("{}: cannot write: {}", to, ec.message());
  }
  return Status::Ok();
}

Status Optimizer::Run() {
  SLIMLM_RETURN_IF_ERROR(Prepare());
  const uint64_t runtime = plan::RuntimeResidentBytes();
  LoadOptions load;
  load.require_tokenizer = false;
  SLIMLM_ASSIGN_OR_RETURN(WeightStore store, LoadModel(args_.model, load));
  SLIMLM_ASSIGN_OR_RETURN(plan::ModelLayout layout, plan::ModelLayout::FromStore(store));
  if (args_.ctx > layout.config.context_length) {
    return InvalidArgumentError("-c {} is beyond the model's context of {}", args_.ctx,
                                layout.config.context_length);
  }
  std::error_code ec;
  fs::create_directories(fs::path(work_) / "models", ec);
  if (!ec) fs::create_directories(fs::path(work_) / "results", ec);
  if (ec) return IoError("{}: cannot create the work folder: {}", work_, ec.message());
  SLIMLM_ASSIGN_OR_RETURN(plan::MachineLimits machine, plan::MeasureMachine(threads_));
  machine.runtime_bytes = runtime;
  plan::MeasureFaultWindow(store, &machine);
  plan::CandidateOptions options;
  options.calibrated = !args_.calib.empty();
  options.prune = !args_.no_prune;
  options.kv_q8 = !args_.no_kv_q8;
  options.types = types_;
  std::vector<plan::Candidate> candidates = plan::BuildCandidates(layout, store, options);

  // Estimates first: a candidate far outside the budget is not worth producing.
  struct Entry {
    plan::Candidate candidate;
    plan::RunEstimate estimate;
    bool skipped = false;
    std::string skip_reason;
    Measurement result;
  };
  std::vector<Entry> entries;
  for (const plan::Candidate& c : candidates) {
    plan::Workload w;
    w.ctx = args_.ctx;
    w.kv_type = c.kv_type;
    w.n_gen = args_.n_gen;
    SLIMLM_ASSIGN_OR_RETURN(plan::RunEstimate e, plan::EstimateRun(c.layout, w, machine));
    Entry entry{c, e};
    const bool source = c.kind == plan::Candidate::Kind::kSource && c.kv_type == DType::kF16;
    if (!source && budget_.memory_bytes &&
        e.model_bytes() > kHopelessMemory * *budget_.memory_bytes) {
      entry.skipped = true;
      entry.skip_reason =
          fmt::format("estimated memory {} is far above the budget", FormatBytes(e.model_bytes()));
    } else if (!source && budget_.min_tg && e.tg * kHopelessTg < *budget_.min_tg) {
      entry.skipped = true;
      entry.skip_reason = fmt::format("estimated tg {:.1f} t/s is far below the minimum", e.tg);
    }
    entries.push_back(std::move(entry));
  }
  const int64_t to_measure =
      std::count_if(entries.begin(), entries.end(), [](const Entry& e) { return !e.skipped; });
  fmt::print(stderr,
             "optimize: {} candidates, {} to measure ({} dropped by their estimates); work "
             "folder {}\n",
             entries.size(), to_measure, entries.size() - static_cast<size_t>(to_measure), work_);
  {
    Progress progress("optimize: reference", 1, "");
    SLIMLM_RETURN_IF_ERROR(EnsureReference());
  }
  {
    Progress progress("optimize: measuring", to_measure, "candidates");
    int64_t done = 0;
    for (Entry& e : entries) {
      if (e.skipped) continue;
      const std::string cache =
          (fs::path(work_) / "results" / (CacheKey(e.candidate) + ".json")).string();
      if (IsRegularFile(cache)) {
        Result<std::string> text = ReadFileToString(cache);
        if (text.ok()) {
          try {
            e.result = FromJson(nlohmann::json::parse(*text));
            PickThreads(&e.result);  // The budget may differ from the run that measured it.
            progress.Update(++done);
            continue;
          } catch (const std::exception&) {
            // A damaged cache entry is measured again.
          }
        }
      }
      Result<Measurement> measured = Measure(e.candidate);
      if (!measured.ok()) {
        e.result.error = measured.status().message();
      } else {
        e.result = *measured;
        SLIMLM_RETURN_IF_ERROR(WriteFileAtomically(cache, ToJson(e.result).dump(2) + "\n"));
      }
      progress.Update(++done);
    }
  }

  // The front and the choice, over what was measured.
  std::vector<size_t> measured;
  std::vector<plan::Measured> points;
  for (size_t i = 0; i < entries.size(); ++i) {
    const Measurement& r = entries[i].result;
    if (entries[i].skipped || !r.error.empty()) continue;
    measured.push_back(i);
    points.push_back({r.memory_bytes, r.tg, r.delta_ppl_percent, r.kld});
  }
  if (points.empty()) return InternalError("no candidate could be measured (see {})", log_);
  const std::vector<bool> front = plan::ParetoFront(points);
  const std::optional<size_t> best = plan::ChooseBest(points, budget_);
  const std::optional<size_t> closest = plan::Closest(points, budget_);

  plan::ReportData report;
  report.title = fmt::format("slimlm optimize: {}", args_.model);
  report.model = args_.model;
  report.machine = fmt::format("{} thread{}, read bandwidth {:.1f} GB/s, {} kernels", threads_,
                               threads_ == 1 ? "" : "s", machine.bandwidth_gbs,
                               kernels::IsaName(kernels::Kernels().isa));
  report.data = fmt::format(
      "{}: {} chunks of {} tokens; memory and speed by `slimlm bench -p {} "
      "-n {}` at {} thread{}",
      args_.data, args_.chunks, args_.ctx, args_.ctx - args_.n_gen, args_.n_gen, threads_,
      threads_ == 1 ? "" : "s");
  report.memory_budget_bytes = budget_.memory_bytes.value_or(0);
  report.min_tg = budget_.min_tg.value_or(0);
  report.max_ppl_increase_percent = budget_.max_delta_ppl_percent.value_or(-1);
  for (size_t k = 0; k < measured.size(); ++k) {
    const Entry& e = entries[measured[k]];
    plan::ReportRow row;
    row.name = e.candidate.name;
    const std::vector<std::string> produce =
        e.candidate.ProduceArgs(args_.model, "OUT.gguf", args_.calib, args_.ctx, 16);
    for (const std::string& a : produce) row.recipe += (row.recipe.empty() ? "slimlm " : " ") + a;
    if (e.candidate.kv_type != DType::kF16) {
      row.recipe += fmt::format("{}run with --kv-type {}", row.recipe.empty() ? "" : "; ",
                                DTypeName(e.candidate.kv_type));
    }
    row.file_bytes = e.result.file_bytes;
    row.memory_bytes = e.result.memory_bytes;
    row.estimate_bytes = e.estimate.model_bytes();
    row.pp_ts = e.result.pp;
    row.tg_ts = e.result.tg;
    row.threads = e.result.threads;
    row.ppl = e.result.ppl;
    row.delta_ppl_percent = e.result.delta_ppl_percent;
    row.kld = e.result.kld;
    row.top1 = e.result.top1;
    row.on_front = front[k];
    row.misses = plan::Misses(points[k], budget_);
    row.meets_budget = row.misses.empty();
    row.chosen = best && *best == k;
    report.rows.push_back(row);
  }
  std::string verdict;
  if (best) {
    const Entry& e = entries[measured[*best]];
    verdict = fmt::format(
        "Chosen: {}. It meets every constraint ({}) with the lowest perplexity increase among "
        "the {} that do: ΔPPL {:+.2f}%, KLD {:.4f}, {} of model memory, {:.1f} tokens/s at {} "
        "thread{}.",
        e.candidate.name, FormatBudget(budget_),
        std::count_if(report.rows.begin(), report.rows.end(),
                      [](const plan::ReportRow& r) { return r.meets_budget; }),
        e.result.delta_ppl_percent, e.result.kld, FormatBytes(e.result.memory_bytes), e.result.tg,
        e.result.threads, e.result.threads == 1 ? "" : "s");
    SLIMLM_ASSIGN_OR_RETURN(std::string model_path, ModelFor(e.candidate));
    SLIMLM_RETURN_IF_ERROR(CopyFileAtomically(model_path, output_));
    report.output = output_;
    if (e.candidate.kv_type != DType::kF16) {
      verdict += fmt::format(" Run it with --kv-type {}.", DTypeName(e.candidate.kv_type));
    }
  } else {
    const Entry& e = entries[measured[*closest]];
    verdict = fmt::format(
        "No candidate meets every constraint ({}). Closest: {}, which misses {}. No model was "
        "written.",
        FormatBudget(budget_), e.candidate.name, plan::Misses(points[*closest], budget_));
  }
  for (const Entry& e : entries) {
    if (e.skipped)
      verdict += fmt::format(" Not produced: {} ({}).", e.candidate.name, e.skip_reason);
    if (!e.result.error.empty()) {
      verdict += fmt::format(" Failed: {} ({}).", e.candidate.name, e.result.error);
    }
  }
  report.verdict = verdict;
  const std::string md = plan::RenderMarkdown(report);
  const std::string base = fs::path(output_).replace_extension("").string();
  SLIMLM_RETURN_IF_ERROR(WriteFileAtomically(base + ".report.md", md));
  SLIMLM_RETURN_IF_ERROR(WriteFileAtomically(base + ".report.html", plan::RenderHtml(report)));
  if (args_.json) {
    nlohmann::json out = {{"chosen", best ? nlohmann::json(report.rows[*best].name) : nullptr},
                          {"output", report.output.empty() ? nullptr : nlohmann::json(output_)},
                          {"report_md", base + ".report.md"},
                          {"report_html", base + ".report.html"},
                          {"verdict", verdict}};
    nlohmann::json rows = nlohmann::json::array();
    for (size_t k = 0; k < measured.size(); ++k) {
      nlohmann::json row = ToJson(entries[measured[k]].result);
      row["name"] = report.rows[k].name;
      row["estimate_bytes"] = report.rows[k].estimate_bytes;
      row["on_front"] = report.rows[k].on_front;
      row["meets_budget"] = report.rows[k].meets_budget;
      rows.push_back(row);
    }
    out["candidates"] = rows;
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{}\nreport: {}.report.md and {}.report.html\n", md, base, base);
  }
  if (!best) return FailedPreconditionError("no candidate meets the budget");
  return Status::Ok();
}

}  // namespace

CommandSpec OptimizeCommand() {
  return {
      "optimize", "Find, write and prove the best compressed model for a budget",
      [](CLI::App* app) {
        auto args = std::make_shared<OptimizeArgs>();
        app->add_option("model", args->model, "Model: GGUF file, HF folder or llama2.c .bin")
            ->required();
        app->add_option("--data", args->data, "Evaluation text (perplexity and KLD)")->required();
        app->add_option("--calib", args->calib,
                        "Calibration text for calibrated quantization and pruning (without it "
                        "those candidates are left out)");
        app->add_option("--memory", args->memory,
                        "Budget: peak resident memory of the model at -c (weights, KV cache, "
                        "activations, tokenizer; not the binary), e.g. 12MiB");
        app->add_option("--min-tg", args->min_tg, "Budget: generated tokens/s at -t threads")
            ->check(CLI::PositiveNumber);
        app->add_option("--max-ppl-increase", args->max_ppl_increase,
                        "Budget: perplexity increase over the source, percent")
            ->check(CLI::NonNegativeNumber);
        app->add_option("-o,--output", args->output,
                        "The chosen model (default: out/<model>.optimized.gguf); the reports "
                        "go beside it");
        app->add_option("--work", args->work,
                        "Folder for candidate models and cached measurements (default: "
                        "<output>.work)");
        app->add_option("-c,--ctx", args->ctx, "Context of the evaluation and of the memory figure")
            ->capture_default_str()
            ->check(CLI::Range(int64_t{16}, int64_t{1} << 20));
        app->add_option("--chunks", args->chunks, "Evaluation chunks")
            ->capture_default_str()
            ->check(CLI::PositiveNumber);
        app->add_option("--n-gen", args->n_gen, "Generated tokens per tg measurement")
            ->capture_default_str()
            ->check(CLI::PositiveNumber);
        app->add_option("-r,--reps", args->reps, "Repetitions of each speed measurement")
            ->capture_default_str()
            ->check(CLI::PositiveNumber);
        AddThreadsOption(app, &args->threads);
        app->add_option("--types", args->types,
                        "Quantization types to try, comma-separated (default: f16, bf16, q8_0, "
                        "q6_k, q4_k, q4_0)");
        app->add_flag("--no-prune", args->no_prune, "Leave out pruned candidates");
        app->add_flag("--no-kv-q8", args->no_kv_q8, "Leave out q8_0 KV-cache candidates");
        app->add_flag("--json", args->json, "Print JSON");
        return [args] { return Optimizer(*args).Run(); };
      }};
}

}  // namespace slimlm::tools
