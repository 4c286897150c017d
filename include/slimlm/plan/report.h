// The report of `slimlm optimize`: the measured candidates, the Pareto front and the choice, as
// Markdown for the terminal and as one self-contained HTML page with plots of the front.
#ifndef SLIMLM_PLAN_REPORT_H_
#define SLIMLM_PLAN_REPORT_H_

#include <string>
#include <vector>

namespace slimlm::plan {

// One measured candidate. A figure that was not measured is NaN.
struct ReportRow {
  std::string name;           // "q4_k calibrated", "sparsegpt 2:4 f16_nm + kv q8_0"
  std::string recipe;         // How it was made: the slimlm commands, one per line.
  double file_bytes = 0;      // The model file.
  double memory_bytes = 0;    // Peak resident memory of the model at the budget's context.
  double estimate_bytes = 0;  // `plan`'s estimate of the same.
  double pp_ts = 0;           // Prompt tokens/s.
  double tg_ts = 0;           // Generated tokens/s, at `threads`.
  int threads = 1;
  double ppl = 0;                // Perplexity on the evaluation text.
  double delta_ppl_percent = 0;  // Against the source model, in percent.
  double kld = 0;                // Mean KL divergence from the source model, nats.
  double top1 = 0;               // Same top token as the source model, fraction.
  bool on_front = false;         // On the Pareto front of (memory, tg, ΔPPL).
  bool meets_budget = false;     // Meets every constraint given.
  bool chosen = false;           // The one written.
  std::string misses;            // The constraints it misses, "" when none.
};

struct ReportData {
  std::string title;    // "slimlm optimize: models/x.gguf"
  std::string model;    // The source model's path.
  std::string machine;  // "2 cores, AVX-512, read bandwidth 34.1 GB/s (1 thread)"
  std::string data;     // The evaluation text and how much of it was used.
  // Constraints: 0 (memory, tg) or a negative ΔPPL means not given; a ΔPPL limit of 0 is one.
  double memory_budget_bytes = 0;
  double min_tg = 0;
  double max_ppl_increase_percent = -1;
  std::vector<ReportRow> rows;  // Every measured candidate, the source model first.
  std::string verdict;          // One paragraph: what was chosen and why, or what came closest.
  std::string output;           // Where the chosen model was written ("" when none).
};

// Markdown: the budget, the verdict and a table of every row (front and choice marked).
std::string RenderMarkdown(const ReportData& data);

// A self-contained HTML page (no external assets, works offline): the verdict, two scatter plots
// drawn as SVG by inline script from the embedded data (ΔPPL against memory, tg against memory;
// the front joined by a line, the choice marked, the budget lines drawn) and the table.
std::string RenderHtml(const ReportData& data);

}  // namespace slimlm::plan

#endif  // SLIMLM_PLAN_REPORT_H_
