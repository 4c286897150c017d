// The live dashboard in headless Chromium (Debian's), against a running `slimlm serve` with
// traffic: the page draws every chart with live points, shows numbers (not placeholders), and
// logs nothing to the console. The page itself references nothing outside the server.
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>

#include "slimlm/serve/dashboard.h"
#include "support/server_process.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm::serve {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DashboardTest, PageIsSelfContained) {
  const std::string html(DashboardHtml());
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
  EXPECT_THAT(html, Not(HasSubstr("src=")));
  EXPECT_THAT(html, HasSubstr("fetch(\"/metrics\")"));
}

// The text between `open` (after it) and the next `close`; "" when absent.
std::string Between(const std::string& text, const std::string& open, const std::string& close) {
  const size_t a = text.find(open);
  if (a == std::string::npos) return "";
  const size_t b = text.find(close, a + open.size());
  return text.substr(a + open.size(), b == std::string::npos ? 0 : b - a - open.size());
}

TEST(DashboardTest, ChromiumDrawsLiveCharts) {
  const std::string chromium = testing::FindProgram("chromium");
  ASSERT_FALSE(chromium.empty()) << "chromium is missing: scripts/install-deps installs it";
  testing::ServerProcess server(testing::DefaultModelPath(), {"-t", "1", "--api-key", "k"});
  ASSERT_TRUE(server.ok()) << server.err();
  // Traffic while the page watches: requests one after another until the page is read.
  std::atomic<bool> stop{false};
  std::thread traffic([&] {
    httplib::Client client("127.0.0.1", server.port());
    client.set_bearer_token_auth("k");
    while (!stop) {
      client.Post("/v1/completions",
                  R"({"prompt": "Once upon a time", "max_tokens": 24, "ignore_eos": true})",
                  "application/json");
    }
  });
  const std::string profile = testing::MakeTempDir() + "/profile";
  const testing::ProcessResult r = testing::RunProcess(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
       "--user-data-dir=" + profile, "--enable-logging=stderr", "--v=0",
       "--virtual-time-budget=9000", "--dump-dom", server.url() + "/dashboard"},
      90);
  stop = true;
  traffic.join();
  std::error_code ec;
  std::filesystem::remove_all(profile, ec);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string& dom = r.out;
  // Every chart has its lines, each with points from several scrapes.
  for (const char* chart : {"tokens", "ttft", "itl", "requests", "kv", "cpu"}) {
    const std::string svg = Between(dom, std::string("id=\"chart-") + chart + "\"", "</svg>");
    EXPECT_THAT(svg, HasSubstr("<polyline")) << chart;
    const std::string points = Between(svg, "data-points=\"", "\"");
    EXPECT_FALSE(points.empty()) << chart;
    if (!points.empty()) {
      EXPECT_GE(std::stoi(points), 2) << chart;
    }
  }
  // The numbers are live: tokens were generated, latencies measured.
  for (const char* stat :
       {"stat-gen", "stat-ttft", "stat-itl", "stat-req", "stat-kv", "stat-cpu"}) {
    const std::string value = Between(dom, std::string("id=\"") + stat + "\">", "<");
    EXPECT_FALSE(value.empty() || value == "-") << stat << ": " << value;
  }
  EXPECT_THAT(Between(dom, "id=\"stat-ttft\">", "<"), HasSubstr("ms"));
  EXPECT_THAT(Between(dom, "id=\"status\"", "</div>"), HasSubstr("ok"));
  // The page wrote nothing to the console (Chromium's own start-up lines do not name it).
  std::istringstream lines(r.err);
  for (std::string line; std::getline(lines, line);) {
    EXPECT_THAT(line, Not(HasSubstr("CONSOLE"))) << line;
  }
}

}  // namespace
}  // namespace slimlm::serve
