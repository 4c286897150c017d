// The optimize report: the Markdown table's figures and markers, the HTML page's embedded data and
// escaping, and the page's plots as headless Chromium draws them (skipped without Chromium).
#include "slimlm/plan/report.h"

#include <unistd.h>

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm::plan {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr double kMiB = 1024.0 * 1024.0;
constexpr double kGiB = 1024.0 * kMiB;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

ReportRow Row(const std::string& name, double file_mib, double memory_mib, double estimate_mib,
              double pp, double tg, double ppl, double delta, double kld, double top1) {
  ReportRow r;
  r.name = name;
  r.recipe = "slimlm quantize models/tinyllama.f16.gguf out.gguf --type " + name;
  r.file_bytes = file_mib * kMiB;
  r.memory_bytes = memory_mib * kMiB;
  r.estimate_bytes = estimate_mib * kMiB;
  r.pp_ts = pp;
  r.tg_ts = tg;
  r.threads = 2;
  r.ppl = ppl;
  r.delta_ppl_percent = delta;
  r.kld = kld;
  r.top1 = top1;
  return r;
}

// A 1.1B model on a 2-core machine with a 1 GiB, ΔPPL ≤ 5 % budget (no tg constraint).
ReportData SampleReport() {
  ReportData d;
  d.title = "slimlm optimize: models/tinyllama.f16.gguf";
  d.model = "models/tinyllama.f16.gguf";
  d.machine = "2 cores, AVX-512, read bandwidth 34.1 GB/s (1 thread)";
  d.data = "wiki.test.raw, 16 chunks of 512 tokens";
  d.memory_budget_bytes = 1.0 * kGiB;
  d.max_ppl_increase_percent = 5;
  d.rows = {
      Row("f16", 2100, 2262, 2232, 48.2, 5.91, 7.712, 0, 0, 1.0),
      Row("q8_0", 1116, 1270, 1250, 61.5, 10.8, 7.725, 0.17, 0.0011, 0.985),
      Row("q6_k calibrated", 862.5, 1004, 990, 40.3, 12.9, 7.761, 0.64, 0.0049, 0.962),
      Row("q4_k", 640, 778, 768, 44.0, 16.4, 7.981, 3.49, 0.0281, 0.921),
      Row("q4_0", 604, 748, 0, 52.1, 15.2, 8.201, 6.34, 0.0512, 0.897),
      // Its speed run failed: tg and pp were not measured.
      Row("sparsegpt 2:4 f16_nm + kv q8_0", 1330, 1485, 1440, kNaN, kNaN, 9.84, 27.6, 0.21, 0.79),
  };
  for (int i : {0, 1, 2, 3}) d.rows[i].on_front = true;
  for (int i : {2, 3}) d.rows[i].meets_budget = true;
  d.rows[2].chosen = true;
  d.rows[0].misses = "memory";
  d.rows[1].misses = "memory";
  d.rows[4].misses = "ΔPPL";
  d.rows[5].misses = "memory, ΔPPL";
  d.verdict = "Chose q6_k calibrated: the smallest ΔPPL (+0.64 %) within 1.00 GiB.";
  d.output = "out/tinyllama.q6_k.gguf";
  return d;
}

// The Markdown table's row whose first cell is `name`, split into cells ("\|" is not a border).
std::vector<std::string> MarkdownRow(const std::string& markdown, const std::string& name) {
  std::istringstream lines(markdown);
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("| " + name + " |", 0) != 0) continue;
    std::vector<std::string> cells;
    std::string cell;
    for (size_t i = 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
        cell += '|';
        ++i;
      } else if (line[i] == '|') {
        cells.push_back(cell.substr(1, cell.size() - 2));  // The padding spaces.
        cell.clear();
      } else {
        cell += line[i];
      }
    }
    return cells;
  }
  return {};
}

int CountLinesStartingWith(const std::string& text, const std::string& prefix) {
  std::istringstream lines(text);
  int n = 0;
  for (std::string line; std::getline(lines, line);) n += line.rfind(prefix, 0) == 0;
  return n;
}

TEST(ReportTest, MarkdownHasARowPerCandidateWithItsFigures) {
  const std::string md = RenderMarkdown(SampleReport());
  EXPECT_THAT(md, ::testing::StartsWith("# slimlm optimize: models/tinyllama.f16.gguf\n"));
  // The header, the alignment row and one row per candidate.
  EXPECT_EQ(CountLinesStartingWith(md, "|"), 2 + 6);
  EXPECT_THAT(MarkdownRow(md, "q4_k"),
              ElementsAre("q4_k", "640.00 MiB", "778.00 MiB (768.00 MiB)", "44.0", "16.40 @2",
                          "7.981", "+3.49", "0.0281", "92.1", "front, meets budget"));
  EXPECT_THAT(MarkdownRow(md, "f16"),
              ElementsAre("f16", "2.05 GiB", "2.21 GiB (2.18 GiB)", "48.2", "5.91 @2", "7.712",
                          "+0.00", "0.0000", "100.0", "front, misses memory"));
  // No estimate (0): no parentheses.
  EXPECT_EQ(MarkdownRow(md, "q4_0").at(2), "748.00 MiB");
  EXPECT_THAT(md, HasSubstr(SampleReport().verdict));
  EXPECT_THAT(md, HasSubstr("- Machine: 2 cores, AVX-512"));
  EXPECT_THAT(md, HasSubstr("- Data: wiki.test.raw"));
  EXPECT_THAT(md, ::testing::EndsWith("Wrote the chosen model to out/tinyllama.q6_k.gguf\n"));
}

TEST(ReportTest, MarkdownPrintsNanAsDash) {
  const std::vector<std::string> cells =
      MarkdownRow(RenderMarkdown(SampleReport()), "sparsegpt 2:4 f16_nm + kv q8_0");
  ASSERT_EQ(cells.size(), 10u);
  EXPECT_EQ(cells[3], "–");  // pp
  EXPECT_EQ(cells[4], "–");  // tg, without its thread count
  EXPECT_EQ(cells[6], "+27.60");
  EXPECT_EQ(cells[9], "misses memory, ΔPPL");
}

TEST(ReportTest, MarkdownMarksChosenAndFront) {
  const std::string md = RenderMarkdown(SampleReport());
  EXPECT_EQ(MarkdownRow(md, "q6_k calibrated").at(9), "chosen, front");
  EXPECT_EQ(MarkdownRow(md, "q8_0").at(9), "front, misses memory");
  EXPECT_EQ(MarkdownRow(md, "q4_0").at(9), "misses ΔPPL");
}

TEST(ReportTest, MarkdownShowsOnlyTheConstraintsGiven) {
  ReportData d = SampleReport();
  std::string md = RenderMarkdown(d);
  EXPECT_THAT(md, HasSubstr("- Budget: memory ≤ 1.00 GiB, ΔPPL ≤ 5 %\n"));
  EXPECT_THAT(md, Not(HasSubstr("tg ≥")));

  d.memory_budget_bytes = 0;
  d.max_ppl_increase_percent = -1;
  d.min_tg = 12.5;
  EXPECT_THAT(RenderMarkdown(d), HasSubstr("- Budget: tg ≥ 12.5 t/s\n"));
  d.memory_budget_bytes = 1536 * kMiB;
  EXPECT_THAT(RenderMarkdown(d), HasSubstr("- Budget: memory ≤ 1.50 GiB, tg ≥ 12.5 t/s\n"));
  d.memory_budget_bytes = 0;
  d.min_tg = 0;
  md = RenderMarkdown(d);
  EXPECT_THAT(md, HasSubstr("- Budget: none given\n"));
  EXPECT_THAT(md, Not(HasSubstr("≤")));
  d.max_ppl_increase_percent = 0;  // No loss at all is a constraint too.
  EXPECT_THAT(RenderMarkdown(d), HasSubstr("- Budget: ΔPPL ≤ 0 %\n"));
}

TEST(ReportTest, MarkdownEscapesPipesAndOmitsTheOutputLineWhenNone) {
  ReportData d = SampleReport();
  d.rows[3].name = "q4_k | imatrix";
  d.output.clear();
  const std::string md = RenderMarkdown(d);
  EXPECT_EQ(MarkdownRow(md, "q4_k \\| imatrix").size(), 10u) << md;
  EXPECT_THAT(md, Not(HasSubstr("Wrote")));
}

// The text of the element that starts with `open` (up to `close`), or "" when there is none.
std::string ElementText(const std::string& html, const std::string& open,
                        const std::string& close) {
  const size_t start = html.find(open);
  if (start == std::string::npos) return "";
  const size_t end = html.find(close, start + open.size());
  if (end == std::string::npos) return "";
  return html.substr(start + open.size(), end - start - open.size());
}

nlohmann::json EmbeddedJson(const std::string& html) {
  const std::string text =
      ElementText(html, "<script type=\"application/json\" id=\"report-data\">", "</script>");
  // '<' is written as the JSON escape \u003c, which any JSON parser reads back: nothing to undo.
  EXPECT_EQ(text.find('<'), std::string::npos);
  return nlohmann::json::parse(text);
}

int Count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

constexpr const char* kNastyName = "</script><script>alert(\"x\")</script> & 'q' <!--";

TEST(ReportTest, HtmlEmbedsEveryRowAsJson) {
  ReportData d = SampleReport();
  d.rows[5].name = kNastyName;
  const nlohmann::json j = EmbeddedJson(RenderHtml(d));
  ASSERT_EQ(j["rows"].size(), d.rows.size());
  for (size_t i = 0; i < d.rows.size(); ++i) {
    const nlohmann::json& r = j["rows"][i];
    const ReportRow& want = d.rows[i];
    EXPECT_EQ(r["name"], want.name);
    EXPECT_EQ(r["recipe"], want.recipe);
    EXPECT_DOUBLE_EQ(r["memory_bytes"].get<double>(), want.memory_bytes);
    EXPECT_DOUBLE_EQ(r["delta_ppl_percent"].get<double>(), want.delta_ppl_percent);
    EXPECT_DOUBLE_EQ(r["ppl"].get<double>(), want.ppl);
    EXPECT_EQ(r["threads"], want.threads);
    EXPECT_EQ(r["on_front"], want.on_front);
    EXPECT_EQ(r["meets_budget"], want.meets_budget);
    EXPECT_EQ(r["chosen"], want.chosen);
    EXPECT_EQ(r["misses"], want.misses);
    if (std::isnan(want.tg_ts)) {
      EXPECT_TRUE(r["tg_ts"].is_null()) << i;
      EXPECT_TRUE(r["pp_ts"].is_null()) << i;
    } else {
      EXPECT_DOUBLE_EQ(r["tg_ts"].get<double>(), want.tg_ts);
    }
  }
  EXPECT_DOUBLE_EQ(j["budget"]["memory_bytes"].get<double>(), kGiB);
  EXPECT_TRUE(j["budget"]["min_tg"].is_null());  // Not given.
  EXPECT_DOUBLE_EQ(j["budget"]["max_delta_ppl_percent"].get<double>(), 5);
  EXPECT_EQ(j["verdict"], d.verdict);
  EXPECT_EQ(j["output"], d.output);
}

TEST(ReportTest, HtmlEscapesStringsInTheTable) {
  ReportData d = SampleReport();
  d.title = "optimize <b>x</b> & \"y\"";
  d.rows[5].name = kNastyName;
  d.rows[5].recipe = "slimlm prune --name \"<x>\"";
  d.verdict = "Chose <script>alert(1)</script> & more";
  const std::string html = RenderHtml(d);
  EXPECT_THAT(html, HasSubstr("&lt;/script&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; "
                              "&amp; &#39;q&#39; &lt;!--"));
  EXPECT_THAT(html, HasSubstr("title=\"slimlm prune --name &quot;&lt;x&gt;&quot;\""));
  EXPECT_THAT(html, HasSubstr("<title>optimize &lt;b&gt;x&lt;/b&gt; &amp; &quot;y&quot;</title>"));
  EXPECT_THAT(html, HasSubstr("Chose &lt;script&gt;alert(1)&lt;/script&gt; &amp; more"));
  // The page's own two scripts are its only script elements, and no name opened a comment.
  EXPECT_EQ(Count(html, "<script"), 2);
  EXPECT_EQ(Count(html, "</script"), 2);
  EXPECT_EQ(Count(html, "<!--"), 0);
}

// The src= and href= values that point off the machine (http:, https: or "//host"), one a line.
std::string RemoteReferences(const std::string& html) {
  std::string lower = html;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::string found;
  for (const std::string attribute : {"src", "href"}) {
    for (size_t at = lower.find(attribute); at != std::string::npos;
         at = lower.find(attribute, at + 1)) {
      size_t i = at + attribute.size();
      while (i < lower.size() && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
      if (i >= lower.size() || lower[i] != '=') continue;
      ++i;
      while (i < lower.size() && (std::isspace(static_cast<unsigned char>(lower[i])) ||
                                  lower[i] == '"' || lower[i] == '\'')) {
        ++i;
      }
      const std::string value = lower.substr(i, 8);
      if (value.rfind("http:", 0) == 0 || value.rfind("https:", 0) == 0 ||
          value.rfind("//", 0) == 0) {
        found += html.substr(at, 60) + "\n";
      }
    }
  }
  return found;
}

TEST(ReportTest, HtmlReferencesNothingOnTheNetwork) {
  const std::string html = RenderHtml(SampleReport());
  EXPECT_EQ(RemoteReferences(html), "");
  EXPECT_NE(RemoteReferences("<img SRC = 'https://example.com/a.png'>"), "");  // The check works.
  EXPECT_THAT(html, Not(HasSubstr("url(")));
  EXPECT_THAT(html, Not(HasSubstr("@import")));
  EXPECT_THAT(html, HasSubstr("id=\"plot-quality\""));
  EXPECT_THAT(html, HasSubstr("id=\"plot-speed\""));
}

// The Chromium binary on PATH, or "" when there is none.
std::string FindChromium() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/bin");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const std::string candidate = dir + "/chromium";
    if (!dir.empty() && ::access(candidate.c_str(), X_OK) == 0) return candidate;
  }
  return "";
}

// A temporary folder removed when the test ends (the browser profile in it is megabytes).
struct ScopedTempDir {
  std::string path = testing::MakeTempDir();
  ~ScopedTempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

struct Browser {
  std::string dom;     // The document after the page's script ran.
  std::string errors;  // Console messages and errors that name the page, one a line.
};

// Loads the page in headless Chromium and returns the DOM it dumps.
Browser RenderInChromium(const std::string& chromium, const std::string& html) {
  ScopedTempDir dir;
  const std::string page = dir.path + "/report.html";
  std::ofstream(page) << html;
  const testing::ProcessResult r = testing::RunProcess(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--user-data-dir=" + dir.path + "/profile", "--enable-logging=stderr", "--v=0",
       "--virtual-time-budget=5000", "--dump-dom", "file://" + page},
      60);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  Browser b{r.out, ""};
  // Chromium logs the page's console as "INFO:CONSOLE:<line>] "<message>", source: <url>"; its
  // own start-up complaints (D-Bus, GPU) do not name the page.
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    const bool console = line.find("CONSOLE") != std::string::npos;
    const bool page_error =
        line.find(":ERROR:") != std::string::npos && line.find(page) != std::string::npos;
    if (console || page_error) b.errors += line + "\n";
  }
  return b;
}

// The class lists of the <circle> elements in the SVG with this id that have class "point".
std::vector<std::string> PointClasses(const std::string& dom, const std::string& id) {
  const std::string svg = ElementText(dom, "id=\"" + id + "\"", "</svg>");
  std::vector<std::string> out;
  for (size_t at = svg.find("<circle "); at != std::string::npos;
       at = svg.find("<circle ", at + 1)) {
    const std::string tag = svg.substr(at, svg.find('>', at) - at);
    const std::string classes = " " + ElementText(tag, "class=\"", "\"") + " ";
    if (classes.find(" point ") != std::string::npos) out.push_back(classes);
  }
  return out;
}

int CountWithClass(const std::vector<std::string>& classes, const std::string& name) {
  int n = 0;
  for (const std::string& c : classes) n += c.find(" " + name + " ") != std::string::npos;
  return n;
}

// Checks one page in the browser: a point per row with both figures, the chosen one marked, the
// front joined, the budget lines drawn, and not one console message.
void ExpectPlotsDrawn(const std::string& chromium, const ReportData& d) {
  const Browser b = RenderInChromium(chromium, RenderHtml(d));
  EXPECT_EQ(b.errors, "");
  int quality = 0, speed = 0, chosen_quality = 0, front_speed = 0;
  for (const ReportRow& r : d.rows) {
    const bool memory = std::isfinite(r.memory_bytes);
    quality += memory && std::isfinite(r.delta_ppl_percent);
    speed += memory && std::isfinite(r.tg_ts);
    chosen_quality += r.chosen && memory && std::isfinite(r.delta_ppl_percent);
    front_speed += r.on_front && memory && std::isfinite(r.tg_ts);
  }
  const std::vector<std::string> q = PointClasses(b.dom, "plot-quality");
  const std::vector<std::string> s = PointClasses(b.dom, "plot-speed");
  EXPECT_EQ(static_cast<int>(q.size()), quality);
  EXPECT_EQ(static_cast<int>(s.size()), speed);
  EXPECT_EQ(CountWithClass(q, "chosen"), chosen_quality);
  EXPECT_EQ(CountWithClass(s, "front"), front_speed);
  for (const char* id : {"plot-quality", "plot-speed"}) {
    SCOPED_TRACE(id);
    const std::string svg = ElementText(b.dom, std::string("id=\"") + id + "\"", "</svg>");
    EXPECT_THAT(svg, HasSubstr("memory (MiB)"));  // The x axis title.
    EXPECT_THAT(svg, Not(HasSubstr("NaN")));      // A degenerate scale would show here.
    EXPECT_GE(Count(svg, "<text"), 6);            // Tick labels at least.
    if (front_speed > 0) {
      EXPECT_THAT(svg, HasSubstr("<polyline class=\"front-line\""));
    }
    if (d.memory_budget_bytes > 0) {
      EXPECT_THAT(svg, HasSubstr("class=\"budget budget-memory\""));
    }
  }
  const std::string quality_svg = ElementText(b.dom, "id=\"plot-quality\"", "</svg>");
  const std::string speed_svg = ElementText(b.dom, "id=\"plot-speed\"", "</svg>");
  EXPECT_EQ(Count(quality_svg, "budget-ppl"), d.max_ppl_increase_percent >= 0 ? 1 : 0);
  EXPECT_EQ(Count(speed_svg, "budget-tg"), d.min_tg > 0 ? 1 : 0);
  EXPECT_EQ(Count(quality_svg, "budget-tg") + Count(speed_svg, "budget-ppl"), 0);
}

TEST(ReportTest, HtmlDrawsThePlotsInChromium) {
  const std::string chromium = FindChromium();
  if (chromium.empty()) {
    GTEST_SKIP() << "chromium not found on PATH (Debian package 'chromium'); the page's plots "
                    "were not checked in a browser";
  }
  ReportData d = SampleReport();
  d.rows[4].name = kNastyName;  // Had the JSON escaping failed, the script would not run.
  ExpectPlotsDrawn(chromium, d);
  d.min_tg = 8;
  d.memory_budget_bytes = 0;
  ExpectPlotsDrawn(chromium, d);
}

TEST(ReportTest, HtmlDrawsDegeneratePlotsInChromium) {
  const std::string chromium = FindChromium();
  if (chromium.empty()) GTEST_SKIP() << "chromium not found on PATH (Debian package 'chromium')";
  {
    // No budget lines either, which would widen the ranges: each axis spans one value.
    SCOPED_TRACE("a single point, no budget");
    ReportData d = SampleReport();
    d.rows.resize(1);
    d.memory_budget_bytes = 0;
    d.max_ppl_increase_percent = -1;
    ExpectPlotsDrawn(chromium, d);
  }
  {
    SCOPED_TRACE("every point at the same memory, no budget");
    ReportData d = SampleReport();
    for (ReportRow& r : d.rows) r.memory_bytes = 900 * kMiB;
    d.memory_budget_bytes = 0;
    d.max_ppl_increase_percent = -1;
    ExpectPlotsDrawn(chromium, d);
  }
  {
    SCOPED_TRACE("30 points, negative ΔPPL, missing figures");
    ReportData d = SampleReport();
    d.min_tg = 14;
    d.rows.clear();
    for (int i = 0; i < 30; ++i) {
      ReportRow r = Row("candidate " + std::to_string(i), 150 + 30 * i, 200 + 37 * i, 0, 40 + i,
                        30 - 0.8 * i, 7.7 + 0.05 * i, -1.5 + 0.9 * i, 0.01 * i, 0.99);
      if (i % 7 == 3) r.tg_ts = kNaN;
      if (i % 11 == 5) r.delta_ppl_percent = kNaN;
      if (i == 29) r.memory_bytes = kNaN;
      r.on_front = i % 3 == 0;
      r.meets_budget = i < 20;
      r.chosen = i == 9;
      d.rows.push_back(r);
    }
    ExpectPlotsDrawn(chromium, d);
  }
}

}  // namespace
}  // namespace slimlm::plan
