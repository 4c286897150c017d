// slimlm bench: Markdown rows and JSON records (llama-bench's field names plus our bounds).
#include <fmt/core.h>

#include "slimlm/core/cpu_features.h"
#include "tools/bench_common.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct Column {
  const char* name;
  int width;
  bool right;  // Numbers align right.
};

const std::vector<Column>& Columns() {
  static const std::vector<Column> columns = {
      {"model", 22, false},       {"size", 10, true},    {"params", 8, true},
      {"backend", 10, false},     {"threads", 7, true},  {"n_batch", 7, true},
      {"type_k", 6, false},       {"type_v", 6, false},  {"fa", 2, true},
      {"test", 14, true},         {"t/s", 18, true},     {"GB/s before/after", 17, true},
      {"tg bound t/s", 12, true}, {"of bound", 8, true},
  };
  return columns;
}

std::string Line(const std::vector<std::string>& cells) {
  std::string line = "|";
  for (size_t i = 0; i < cells.size(); ++i) {
    const Column& c = Columns()[i];
    line += c.right ? fmt::format(" {:>{}} |", cells[i], c.width)
                    : fmt::format(" {:<{}} |", cells[i], c.width);
  }
  return line + "\n";
}

std::string TypeName(DType type) { return std::string(DTypeName(type)); }

}  // namespace

std::string MarkdownHeader() {
  std::vector<std::string> names, rules;
  for (const Column& c : Columns()) {
    names.push_back(c.name);
    std::string rule(static_cast<size_t>(c.width), '-');
    if (c.right) rule.back() = ':';
    rules.push_back(rule);
  }
  return Line(names) + Line(rules);
}

std::string MarkdownRow(const ModelCosts& costs, const BenchRecord& r) {
  const BenchTest& t = r.test;
  const bool probed = r.bw_before > 0 || r.bw_after > 0;
  const bool bound = t.n_gen > 0 && r.bound_ts > 0;
  return Line({
      costs.type,
      FormatBytes(static_cast<double>(costs.size)),
      fmt::format("{:.2f} M", static_cast<double>(costs.n_params) / 1e6),
      "CPU " + costs.isa,
      std::to_string(t.threads),
      std::to_string(t.n_batch),
      TypeName(t.type_k),
      TypeName(t.type_v),
      t.flash_attn ? "1" : "0",
      t.Name(),
      fmt::format("{:.2f} ± {:.2f}", r.avg_ts, r.stddev_ts),
      probed ? fmt::format("{:.1f} / {:.1f}", r.bw_before, r.bw_after) : "-",
      bound ? fmt::format("{:.2f}", r.bound_ts) : "-",
      bound ? fmt::format("{:.1f}%", 100.0 * r.avg_ts / r.bound_ts) : "-",
  });
}

nlohmann::json RecordJson(const ModelCosts& costs, const BenchRecord& r) {
  const BenchTest& t = r.test;
  const bool bound = t.n_gen > 0 && r.bound_ts > 0;
  std::vector<uint64_t> samples_ns;  // Whole nanoseconds, as llama-bench writes them.
  for (double ns : r.samples_ns) samples_ns.push_back(static_cast<uint64_t>(ns));
  return {
      {"build_commit", std::string(kSlimlmVersion)},
      {"build_number", 0},
      {"cpu_info", CpuModelName()},
      {"gpu_info", ""},
      {"backends", "CPU"},
      {"model_filename", costs.filename},
      {"model_type", costs.type},
      {"model_size", costs.size},
      {"model_n_params", costs.n_params},
      {"n_batch", t.n_batch},
      {"n_ubatch", t.n_batch},
      {"n_threads", t.threads},
      {"type_k", TypeName(t.type_k)},
      {"type_v", TypeName(t.type_v)},
      {"flash_attn", t.flash_attn},
      {"n_prompt", t.n_prompt},
      {"n_gen", t.n_gen},
      {"n_depth", t.n_depth},
      {"test_time", r.test_time},
      {"avg_ns", static_cast<uint64_t>(r.avg_ns)},
      {"stddev_ns", static_cast<uint64_t>(r.stddev_ns)},
      {"avg_ts", r.avg_ts},
      {"stddev_ts", r.stddev_ts},
      {"samples_ns", samples_ns},
      {"samples_ts", r.samples_ts},
      // Ours: the kernel path, the bandwidth beside the figure and the bound it implies.
      {"isa", costs.isa},
      {"bandwidth_gbs_before", r.bw_before},
      {"bandwidth_gbs_after", r.bw_after},
      {"matmul_gflops", r.matmul_gflops},
      {"rss_bytes", r.rss_bytes},
      {"peak_rss_bytes", r.peak_rss_bytes},
      {"runtime_rss_bytes", r.runtime_rss_bytes},
      {"bytes_per_token", t.n_gen > 0 ? nlohmann::json(r.bytes_per_token) : nullptr},
      {"tg_bound_ts", bound ? nlohmann::json(r.bound_ts) : nullptr},
      {"bound_fraction", bound ? nlohmann::json(r.avg_ts / r.bound_ts) : nullptr},
  };
}

}  // namespace slimlm::tools
