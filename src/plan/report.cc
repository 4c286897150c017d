// The optimize report. Markdown and HTML share one set of cell texts, so the terminal and the
// page never disagree. The page's script draws the plots from the rows embedded as JSON, so the
// C++ side does no layout and the page stays one file that works offline.
#include "slimlm/plan/report.h"

#include <cmath>
#include <iterator>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/core.h>
#include <nlohmann/json.hpp>

namespace slimlm::plan {
namespace {

using Json = nlohmann::json;

constexpr const char* kMissing = "–";  // En dash: a figure that was not measured.

std::string FormatBytes(double bytes) {
  if (!std::isfinite(bytes)) return kMissing;
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (std::fabs(bytes) >= 1024.0 && u < 4) {
    bytes /= 1024.0;
    ++u;
  }
  return u == 0 ? fmt::format("{:.0f} B", bytes) : fmt::format("{:.2f} {}", bytes, units[u]);
}

std::string FormatFixed(double value, int decimals) {
  return std::isfinite(value) ? fmt::format("{:.{}f}", value, decimals) : kMissing;
}

// ΔPPL keeps its sign: a candidate can score better than its source on a short text.
std::string FormatSigned(double value, int decimals) {
  return std::isfinite(value) ? fmt::format("{:+.{}f}", value, decimals) : kMissing;
}

// The constraints given, "memory ≤ 1.50 GiB, tg ≥ 20 t/s, ΔPPL ≤ 5 %", or "" for none.
std::string BudgetText(const ReportData& data) {
  std::string text;
  auto add = [&text](const std::string& part) { text += (text.empty() ? "" : ", ") + part; };
  if (data.memory_budget_bytes > 0) add("memory ≤ " + FormatBytes(data.memory_budget_bytes));
  if (data.min_tg > 0) add(fmt::format("tg ≥ {:g} t/s", data.min_tg));
  if (data.max_ppl_increase_percent >= 0) {
    add(fmt::format("ΔPPL ≤ {:g} %", data.max_ppl_increase_percent));
  }
  return text;
}

std::string StatusText(const ReportRow& row) {
  std::string text = row.chosen ? "chosen" : "";
  auto add = [&text](const std::string& part) { text += (text.empty() ? "" : ", ") + part; };
  if (row.on_front) add("front");
  // The chosen one meets the budget by definition; saying so again is noise.
  if (!row.chosen && row.meets_budget) add("meets budget");
  if (!row.meets_budget) add(row.misses.empty() ? "misses the budget" : "misses " + row.misses);
  return text;
}

struct Column {
  const char* header;
  const char* html_class;  // "num" is right-aligned, in Markdown too.
};

constexpr Column kColumns[] = {
    {"Candidate", ""},
    {"File", "num"},
    {"Memory (plan)", "num"},
    {"pp t/s", "num"},
    {"tg t/s (@threads)", "num"},
    {"PPL", "num"},
    {"ΔPPL %", "num"},
    {"KLD", "num"},
    {"top-1 %", "num"},
    {"Status", "status"},
};

bool IsNumeric(const Column& c) { return std::string_view(c.html_class) == "num"; }

std::string ClassAttribute(const char* name) {
  return *name != '\0' ? fmt::format(" class=\"{}\"", name) : "";
}

// The row's texts in kColumns order, unescaped.
std::vector<std::string> Cells(const ReportRow& row) {
  std::string memory = FormatBytes(row.memory_bytes);
  // An estimate of 0 means `plan` made none; NaN means it failed and prints as the dash.
  if (row.estimate_bytes != 0) memory += " (" + FormatBytes(row.estimate_bytes) + ")";
  std::string tg = FormatFixed(row.tg_ts, 2);
  if (std::isfinite(row.tg_ts)) tg += fmt::format(" @{}", row.threads);
  return {row.name,
          FormatBytes(row.file_bytes),
          memory,
          FormatFixed(row.pp_ts, 1),
          tg,
          FormatFixed(row.ppl, 3),
          FormatSigned(row.delta_ppl_percent, 2),
          FormatFixed(row.kld, 4),
          FormatFixed(row.top1 * 100.0, 1),
          StatusText(row)};
}

// A table cell holds one line, and a bare '|' would end the cell early.
std::string MarkdownCell(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// JSON has no NaN; an unmeasured figure, or a constraint not given (0), is null.
Json Number(double value) { return std::isfinite(value) ? Json(value) : Json(nullptr); }
Json Constraint(double value) { return value > 0 ? Number(value) : Json(nullptr); }

Json ReportJson(const ReportData& data) {
  Json rows = Json::array();
  for (const ReportRow& r : data.rows) {
    Json row = {{"name", r.name},
                {"recipe", r.recipe},
                {"file_bytes", Number(r.file_bytes)},
                {"memory_bytes", Number(r.memory_bytes)},
                {"estimate_bytes", Number(r.estimate_bytes)},
                {"pp_ts", Number(r.pp_ts)},
                {"tg_ts", Number(r.tg_ts)},
                {"threads", r.threads},
                {"ppl", Number(r.ppl)},
                {"delta_ppl_percent", Number(r.delta_ppl_percent)},
                {"kld", Number(r.kld)},
                {"top1", Number(r.top1)},
                {"on_front", r.on_front},
                {"meets_budget", r.meets_budget},
                {"chosen", r.chosen},
                {"misses", r.misses},
                {"status", StatusText(r)}};
    rows.push_back(std::move(row));
  }
  return {{"title", data.title},
          {"model", data.model},
          {"machine", data.machine},
          {"data", data.data},
          {"verdict", data.verdict},
          {"output", data.output},
          {"budget",
           {{"memory_bytes", Constraint(data.memory_budget_bytes)},
            {"min_tg", Constraint(data.min_tg)},
            {"max_delta_ppl_percent", data.max_ppl_increase_percent >= 0
                                          ? Number(data.max_ppl_increase_percent)
                                          : Json(nullptr)}}},
          {"rows", std::move(rows)}};
}

// JSON text that is safe inside <script>: every '<' becomes \u003c, which JSON.parse reads back
// as '<', so no name can close the element ("</script>") or open a comment ("<!--").
std::string ScriptSafeJson(const Json& json) {
  // Replacing invalid UTF-8 (a name from a file) rather than throwing keeps this function total.
  const std::string text = json.dump(-1, ' ', false, Json::error_handler_t::replace);
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '<') {
      out += "\\u003c";
    } else {
      out += c;
    }
  }
  return out;
}

constexpr const char* kCss = R"css(
:root { color-scheme: light; }
body { margin: 0; background: #fff; color: #1f2328;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
main { max-width: 1280px; margin: 0 auto; padding: 24px; }
h1 { font-size: 1.5em; margin: 0 0 12px; overflow-wrap: anywhere; }
h2 { font-size: 1.15em; margin: 28px 0 8px; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.facts dt { color: #57606a; }
dl.facts dd { margin: 0; overflow-wrap: anywhere; }
.verdict { margin: 16px 0; padding: 10px 14px; background: #f6f8fa;
  border-left: 4px solid #1a7f37; border-radius: 4px; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(420px, 1fr)); gap: 16px; }
figure { margin: 0; padding: 8px; border: 1px solid #d0d7de; border-radius: 6px; }
figcaption { font-weight: 600; margin: 0 0 4px 4px; }
svg { display: block; width: 100%; height: auto; }
svg text { font-size: 12px; fill: #57606a; }
svg .axis-title { fill: #1f2328; font-weight: 600; }
svg .grid { stroke: #eaeef2; }
svg .frame { fill: none; stroke: #8c959f; }
circle.point, circle.mark { fill: #afb8c1; stroke: #fff; stroke-width: 1.5; }
circle.meets { fill: #218bff; }
circle.front { stroke: #e16f24; stroke-width: 2.5; }
circle.chosen { fill: #1a7f37; stroke: #0d1117; stroke-width: 2; }
circle.point:hover { stroke: #0d1117; }
.front-line { fill: none; stroke: #e16f24; stroke-width: 1.5; }
line.budget { stroke: #cf222e; stroke-width: 1.5; stroke-dasharray: 6 4; }
svg text.budget-label { fill: #cf222e; }
svg text.chosen-label { fill: #1a7f37; font-weight: 600; }
.table-wrap { overflow-x: auto; }
table { border-collapse: collapse; width: 100%; font-size: 14px;
  font-variant-numeric: tabular-nums; }
th, td { padding: 4px 6px; border-bottom: 1px solid #d0d7de; white-space: nowrap;
  text-align: left; }
th { background: #f6f8fa; }
.num { text-align: right; }
td.status { white-space: normal; min-width: 8em; }
tr.chosen td { background: #dafbe1; font-weight: 600; }
tr.front td:first-child { box-shadow: inset 3px 0 #e16f24; }
td[title] { text-decoration: underline dotted #8c959f; cursor: help; }
footer { margin-top: 16px; color: #57606a; }
)css";

// Draws both plots from #report-data. Hovering a point shows its <title>.
constexpr const char* kScript = R"js(
(() => {
  'use strict';
  const NS = 'http://www.w3.org/2000/svg';  // A namespace name, never fetched.
  const MiB = 1024 * 1024;
  const W = 560, H = 380, M = {left: 64, right: 24, top: 44, bottom: 46};
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const num = v => (typeof v === 'number' ? v : NaN);  // null (not measured) becomes NaN.
  const fixed = (v, d) => (Number.isFinite(v) ? v.toFixed(d) : '–');
  const signed = (v, d) => (Number.isFinite(v) && v >= 0 ? '+' : '') + fixed(v, d);
  const bytes = b => (b >= 1024 * MiB ? `${fixed(b / MiB / 1024, 2)} GiB`
                                       : `${fixed(b / MiB, 2)} MiB`);

  function el(parent, name, attrs, text) {
    const e = document.createElementNS(NS, name);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return parent.appendChild(e);
  }

  // The range of the values, padded so that no point sits on the frame; one value gets a span.
  function domain(values) {
    if (!values.length) return [0, 1];
    const lo = Math.min(...values), hi = Math.max(...values);
    const pad = hi > lo ? (hi - lo) * 0.08 : Math.max(Math.abs(lo) * 0.1, 1);
    return [lo - pad, hi + pad];
  }

  // About n round values (1, 2 or 5 times a power of ten) within [lo, hi], with their labels.
  function ticks(lo, hi, n) {
    const raw = (hi - lo) / n;
    if (!(raw > 0 && Number.isFinite(raw))) return [];
    const mag = 10 ** Math.floor(Math.log10(raw)), f = raw / mag;
    const step = mag * (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10);
    const digits = Math.max(0, -Math.floor(Math.log10(step) + 1e-9));
    const out = [];
    for (let i = Math.ceil(lo / step); i * step <= hi; i++) out.push((i * step).toFixed(digits));
    return out;
  }

  function tooltip(r) {
    const plan = r.estimate_bytes === 0 ? '' : ` (plan ${bytes(num(r.estimate_bytes))})`;
    return [r.name, `memory ${bytes(num(r.memory_bytes))}${plan}`,
      `tg ${fixed(num(r.tg_ts), 2)} t/s @${r.threads}, pp ${fixed(num(r.pp_ts), 1)} t/s`,
      `ΔPPL ${signed(num(r.delta_ppl_percent), 2)} %, KLD ${fixed(num(r.kld), 4)}`,
      r.status].join('\n');
  }

  function legend(svg, withBudget) {
    const g = el(svg, 'g', {class: 'legend'});
    const items = [['candidate', ''], ['meets budget', 'meets'], ['Pareto front', 'front'],
      ['chosen', 'chosen']];
    if (withBudget) items.push(['budget', 'budget']);
    let x = M.left;
    for (const [label, kind] of items) {
      if (kind === 'budget') {
        el(g, 'line', {class: 'budget', x1: x - 6, x2: x + 6, y1: 16, y2: 16});
      } else {
        if (kind === 'front') {
          el(g, 'line', {class: 'front-line', x1: x - 9, x2: x + 9, y1: 16, y2: 16});
        }
        el(g, 'circle', {class: `mark ${kind}`, cx: x, cy: 16, r: 5});
      }
      el(g, 'text', {x: x + 10, y: 20}, label);
      x += 36 + label.length * 7;
    }
  }

  // spec: y (the row's y figure), yTitle, limit (a horizontal budget line or NaN), limitClass,
  // limitLabel.
  function plot(svg, spec) {
    const pts = data.rows.map(r => ({r, x: num(r.memory_bytes) / MiB, y: spec.y(r)}))
      .filter(p => Number.isFinite(p.x) && Number.isFinite(p.y));
    const budgetX = num(data.budget.memory_bytes) / MiB;
    const xs = pts.map(p => p.x), ys = pts.map(p => p.y);
    if (Number.isFinite(budgetX)) xs.push(budgetX);
    if (Number.isFinite(spec.limit)) ys.push(spec.limit);
    const [x0, x1] = domain(xs), [y0, y1] = domain(ys);
    const w = W - M.left - M.right, h = H - M.top - M.bottom;
    const sx = v => M.left + (v - x0) / (x1 - x0) * w;
    const sy = v => M.top + h - (v - y0) / (y1 - y0) * h;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);

    const axes = el(svg, 'g', {class: 'axes'});
    for (const t of ticks(x0, x1, 6)) {
      el(axes, 'line', {class: 'grid', x1: sx(t), x2: sx(t), y1: M.top, y2: M.top + h});
      el(axes, 'text', {x: sx(t), y: M.top + h + 16, 'text-anchor': 'middle'}, t);
    }
    for (const t of ticks(y0, y1, 5)) {
      el(axes, 'line', {class: 'grid', x1: M.left, x2: M.left + w, y1: sy(t), y2: sy(t)});
      el(axes, 'text', {x: M.left - 6, y: sy(t) + 4, 'text-anchor': 'end'}, t);
    }
    el(axes, 'rect', {class: 'frame', x: M.left, y: M.top, width: w, height: h});
    el(axes, 'text', {class: 'axis-title', x: M.left + w / 2, y: H - 8, 'text-anchor': 'middle'},
       'memory (MiB)');
    el(axes, 'text', {class: 'axis-title', 'text-anchor': 'middle',
       transform: `translate(16 ${M.top + h / 2}) rotate(-90)`}, spec.yTitle);
    if (!pts.length) {
      el(svg, 'text', {x: M.left + w / 2, y: M.top + h / 2, 'text-anchor': 'middle'},
         'no candidate has both figures');
    }

    if (Number.isFinite(budgetX)) {
      el(svg, 'line', {class: 'budget budget-memory', x1: sx(budgetX), x2: sx(budgetX),
         y1: M.top, y2: M.top + h});
      const right = sx(budgetX) < M.left + w / 2;  // The label goes where there is room.
      el(svg, 'text', {class: 'budget-label', x: sx(budgetX) + (right ? 4 : -4), y: M.top + 12,
         'text-anchor': right ? 'start' : 'end'}, `budget ${bytes(budgetX * MiB)}`);
    }
    if (Number.isFinite(spec.limit)) {
      el(svg, 'line', {class: `budget ${spec.limitClass}`, x1: M.left, x2: M.left + w,
         y1: sy(spec.limit), y2: sy(spec.limit)});
      el(svg, 'text', {class: 'budget-label', x: M.left + w - 4, y: sy(spec.limit) - 4,
         'text-anchor': 'end'}, spec.limitLabel);
    }

    const front = pts.filter(p => p.r.on_front).sort((a, b) => a.x - b.x || a.y - b.y);
    if (front.length) {
      el(svg, 'polyline', {class: 'front-line',
         points: front.map(p => `${sx(p.x)},${sy(p.y)}`).join(' ')});
    }
    // The chosen point last, so that nothing covers it.
    for (const p of [...pts].sort((a, b) => a.r.chosen - b.r.chosen)) {
      const cls = ['point'];
      if (p.r.on_front) cls.push('front');
      if (p.r.meets_budget) cls.push('meets');
      if (p.r.chosen) cls.push('chosen');
      const c = el(svg, 'circle', {class: cls.join(' '), cx: sx(p.x), cy: sy(p.y),
                   r: p.r.chosen ? 7 : 5});
      el(c, 'title', {}, tooltip(p.r));
      if (p.r.chosen) {
        const left = sx(p.x) > M.left + w / 2;
        el(svg, 'text', {class: 'chosen-label', x: sx(p.x) + (left ? -10 : 10), y: sy(p.y) - 10,
           'text-anchor': left ? 'end' : 'start'}, p.r.name);
      }
    }
    legend(svg, Number.isFinite(budgetX) || Number.isFinite(spec.limit));
  }

  const maxDelta = num(data.budget.max_delta_ppl_percent), minTg = num(data.budget.min_tg);
  plot(document.getElementById('plot-quality'), {
    y: r => num(r.delta_ppl_percent), yTitle: 'ΔPPL (%)', limit: maxDelta,
    limitClass: 'budget-ppl', limitLabel: `max ΔPPL ${maxDelta} %`});
  plot(document.getElementById('plot-speed'), {
    y: r => num(r.tg_ts), yTitle: 'tg (tokens/s)', limit: minTg,
    limitClass: 'budget-tg', limitLabel: `min tg ${minTg} t/s`});
})();
)js";

std::string HtmlTable(const ReportData& data) {
  std::string out = "<div class=\"table-wrap\"><table>\n<thead><tr>";
  for (const Column& c : kColumns) {
    out += fmt::format("<th{}>{}</th>", ClassAttribute(c.html_class), HtmlEscape(c.header));
  }
  out += "</tr></thead>\n<tbody>\n";
  for (const ReportRow& row : data.rows) {
    const char* row_class = row.chosen ? "chosen" : row.on_front ? "front" : "";
    out += "<tr" + ClassAttribute(row_class) + ">";
    const std::vector<std::string> cells = Cells(row);
    for (size_t i = 0; i < std::size(kColumns); ++i) {
      // The name's cell shows the recipe on hover: the commands that made the candidate.
      const std::string title =
          i == 0 && !row.recipe.empty() ? " title=\"" + HtmlEscape(row.recipe) + "\"" : "";
      out += fmt::format("<td{}{}>{}</td>", ClassAttribute(kColumns[i].html_class), title,
                         HtmlEscape(cells[i]));
    }
    out += "</tr>\n";
  }
  return out + "</tbody>\n</table></div>\n";
}

}  // namespace

std::string RenderMarkdown(const ReportData& data) {
  std::string out = "# " + (data.title.empty() ? std::string("slimlm optimize") : data.title);
  out += "\n\n";
  const std::string budget = BudgetText(data);
  out += "- Budget: " + (budget.empty() ? std::string("none given") : budget) + "\n";
  if (!data.model.empty()) out += "- Model: " + data.model + "\n";
  if (!data.machine.empty()) out += "- Machine: " + data.machine + "\n";
  if (!data.data.empty()) out += "- Data: " + data.data + "\n";
  if (!data.verdict.empty()) out += "\n" + data.verdict + "\n";

  out += "\n|";
  for (const Column& c : kColumns) out += fmt::format(" {} |", c.header);
  out += "\n|";
  for (const Column& c : kColumns) out += IsNumeric(c) ? "---:|" : "---|";
  out += "\n";
  for (const ReportRow& row : data.rows) {
    out += "|";
    for (const std::string& cell : Cells(row)) out += " " + MarkdownCell(cell) + " |";
    out += "\n";
  }
  if (!data.output.empty()) out += "\nWrote the chosen model to " + data.output + "\n";
  return out;
}

std::string RenderHtml(const ReportData& data) {
  const std::string title = data.title.empty() ? "slimlm optimize" : data.title;
  const std::string budget = BudgetText(data);
  std::string out =
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      // The policy forbids every fetch, so the page works offline and nothing can leak.
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
      "style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\n"
      "<link rel=\"icon\" href=\"data:,\">\n";
  out += "<title>" + HtmlEscape(title) + "</title>\n<style>" + kCss + "</style>\n</head>\n";
  out += "<body>\n<main>\n<h1>" + HtmlEscape(title) + "</h1>\n<dl class=\"facts\">\n";
  auto fact = [&out](const char* term, const std::string& text) {
    if (!text.empty()) out += fmt::format("<dt>{}</dt><dd>{}</dd>\n", term, HtmlEscape(text));
  };
  fact("Budget", budget.empty() ? "none given" : budget);
  fact("Model", data.model);
  fact("Machine", data.machine);
  fact("Data", data.data);
  out += "</dl>\n";
  if (!data.verdict.empty()) out += "<p class=\"verdict\">" + HtmlEscape(data.verdict) + "</p>\n";

  out +=
      "<h2>Candidates</h2>\n<noscript><p>The plots need JavaScript; the table below has every "
      "figure.</p></noscript>\n<div class=\"plots\">\n"
      "<figure><figcaption>Quality: ΔPPL against memory</figcaption>"
      "<svg id=\"plot-quality\" role=\"img\" aria-label=\"ΔPPL against memory\"></svg></figure>\n"
      "<figure><figcaption>Speed: tg against memory</figcaption>"
      "<svg id=\"plot-speed\" role=\"img\" aria-label=\"tg against memory\"></svg></figure>\n"
      "</div>\n<h2>Table</h2>\n";
  out += HtmlTable(data);
  if (!data.output.empty()) {
    out +=
        "<footer>Wrote the chosen model to <code>" + HtmlEscape(data.output) + "</code></footer>\n";
  }
  out += "</main>\n<script type=\"application/json\" id=\"report-data\">" +
         ScriptSafeJson(ReportJson(data)) + "</script>\n<script>" + kScript +
         "</script>\n</body>\n</html>\n";
  return out;
}

}  // namespace slimlm::plan
