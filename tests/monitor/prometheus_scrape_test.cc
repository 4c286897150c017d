// A real Prometheus (Debian's) scrapes a live `slimlm serve` on loopback; after some requests,
// its HTTP API returns our counters and histograms with the values the clients can count.
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include <fmt/core.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/server_process.h"
#include "support/test_data.h"

extern char** environ;

namespace slimlm {
namespace {

using nlohmann::json;

// A port nothing listens on now (the kernel's choice for a socket bound to port 0).
int FreePort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

// Prometheus as a child process, killed by the destructor.
class Prometheus {
 public:
  Prometheus(const std::string& binary, const std::string& target) : port_(FreePort()) {
    const std::string dir = testing::MakeTempDir();
    std::ofstream(dir + "/prometheus.yml")
        << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        << "scrape_configs:\n  - job_name: slimlm\n    static_configs:\n"
        << "      - targets: ['" << target << "']\n";
    const std::vector<std::string> argv = {
        binary, "--config.file=" + dir + "/prometheus.yml", "--storage.tsdb.path=" + dir + "/data",
        fmt::format("--web.listen-address=127.0.0.1:{}", port_), "--log.level=warn"};
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    const std::string log = dir + "/log";
    posix_spawn_file_actions_addopen(&actions, 1, log.c_str(), O_WRONLY | O_CREAT, 0644);
    posix_spawn_file_actions_addopen(&actions, 2, log.c_str(), O_WRONLY | O_CREAT, 0644);
    if (posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ) != 0) pid_ = -1;
    posix_spawn_file_actions_destroy(&actions);
  }
  ~Prometheus() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  // The value of an instant query's first sample; -1 while there is none.
  double Query(const std::string& promql) const {
    httplib::Client client("127.0.0.1", port_);
    client.set_connection_timeout(1, 0);
    httplib::Result res =
        client.Get("/api/v1/query", httplib::Params{{"query", promql}}, httplib::Headers{});
    if (!res || res->status != 200) return -1;
    const json j = json::parse(res->body, nullptr, false);
    if (j.is_discarded() || j["data"]["result"].empty()) return -1;
    return std::stod(j["data"]["result"][0]["value"][1].get<std::string>());
  }
  // Polls until the query returns `expected` (60 s at most); the last value.
  double WaitFor(const std::string& promql, double expected) const {
    double v = -1;
    for (int i = 0; i < 600 && v != expected; ++i) {
      v = Query(promql);
      if (v != expected) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return v;
  }

 private:
  int port_;
  pid_t pid_ = -1;
};

TEST(PrometheusScrapeTest, PrometheusScrapesOurMetrics) {
  const std::string binary = testing::FindProgram("prometheus");
  ASSERT_FALSE(binary.empty()) << "prometheus is missing: scripts/install-deps installs it";
  testing::ServerProcess server(testing::DefaultModelPath(), {"-t", "1", "--model-name", "m"});
  ASSERT_TRUE(server.ok()) << server.err();
  Prometheus prometheus(binary, fmt::format("127.0.0.1:{}", server.port()));

  httplib::Client client("127.0.0.1", server.port());
  const int requests = 5;
  for (int i = 0; i < requests; ++i) {
    const json body = {{"prompt", "Once upon a time"},
                       {"max_tokens", 7},
                       {"temperature", 0},
                       {"ignore_eos", true}};
    httplib::Result res = client.Post("/v1/completions", body.dump(), "application/json");
    ASSERT_TRUE(res && res->status == 200);
  }
  EXPECT_EQ(prometheus.WaitFor("slimlm_generation_tokens_total{model_name=\"m\"}", requests * 7),
            requests * 7);
  EXPECT_EQ(prometheus.Query("slimlm_request_success_total{finished_reason=\"length\"}"), requests);
  EXPECT_EQ(prometheus.Query("slimlm_time_to_first_token_seconds_count"), requests);
  EXPECT_EQ(prometheus.Query("slimlm_inter_token_latency_seconds_count"), requests * 6);
  EXPECT_EQ(prometheus.Query("slimlm_e2e_request_latency_seconds_bucket{le=\"+Inf\"}"), requests);
  EXPECT_EQ(prometheus.Query("slimlm_num_requests_running"), 0);
  EXPECT_GT(prometheus.Query("slimlm_model_weight_bytes"), 1e6);
  EXPECT_GT(prometheus.Query("process_resident_memory_bytes"), 1e6);
  EXPECT_EQ(prometheus.Query("up{job=\"slimlm\"}"), 1);
  // A quantile from our buckets: within the bucket range, as Prometheus computes it.
  const double p99 =
      prometheus.Query("histogram_quantile(0.99, slimlm_e2e_request_latency_seconds_bucket)");
  EXPECT_GT(p99, 0);
  EXPECT_LT(p99, 100);
}

}  // namespace
}  // namespace slimlm
