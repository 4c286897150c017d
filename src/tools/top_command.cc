// slimlm top URL: a terminal view of a running server, from its /metrics and /health, refreshed
// in place: requests, token rates, KV-cache use, latency percentiles over the last interval,
// CPU, memory and bandwidth. --once prints one frame (two scrapes an interval apart) and exits.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <ctime>
#include <optional>
#include <string>
#include <thread>

#include <fmt/core.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "slimlm/monitor/exposition.h"
#include "tools/command.h"
#include "tools/common.h"

namespace slimlm::tools {
namespace {

struct TopArgs {
  std::string url;
  double interval = 1.0;
  bool once = false;
};

struct Scrape {
  std::vector<monitor::Sample> samples;
  nlohmann::json health;
  std::chrono::steady_clock::time_point at;
};

Result<Scrape> Fetch(httplib::Client& client, const std::string& url) {
  Scrape s;
  s.at = std::chrono::steady_clock::now();
  httplib::Result metrics = client.Get("/metrics");
  if (!metrics) {
    return IoError("{}: cannot reach the server ({})", url, httplib::to_string(metrics.error()));
  }
  if (metrics->status != 200) {
    return IoError("{}/metrics answered HTTP {}: is this a slimlm server?", url, metrics->status);
  }
  SLIMLM_ASSIGN_OR_RETURN(s.samples, monitor::ParseExposition(metrics->body));
  if (!monitor::SumOf(s.samples, "slimlm_generation_tokens_total")) {
    return InvalidArgumentError("{}/metrics has no slimlm metrics: is this a slimlm server?", url);
  }
  if (httplib::Result health = client.Get("/health"); health) {
    s.health = nlohmann::json::parse(health->body, nullptr, false);
  }
  return s;
}

double Value(const Scrape& s, std::string_view name, const monitor::Labels& match = {}) {
  return monitor::SumOf(s.samples, name, match).value_or(0);
}

std::string Ms(std::optional<double> seconds) {
  if (!seconds) return "-";
  return *seconds < 1 ? fmt::format("{:.1f} ms", *seconds * 1e3)
                      : fmt::format("{:.2f} s", *seconds);
}

std::string Bytes(double b) {
  if (b >= 1024.0 * 1024 * 1024) return fmt::format("{:.2f} GiB", b / (1024.0 * 1024 * 1024));
  return fmt::format("{:.1f} MiB", b / (1024.0 * 1024));
}

// One frame: counters as rates over the interval between the two scrapes, histograms as the
// percentiles of what they observed in it (all of their history when nothing new came).
std::string Frame(const std::string& url, const Scrape& before, const Scrape& now) {
  const double dt = std::chrono::duration<double>(now.at - before.at).count();
  auto rate = [&](std::string_view name) { return (Value(now, name) - Value(before, name)) / dt; };
  auto window = [&](std::string_view histogram) {
    const monitor::Buckets all = monitor::BucketsOf(now.samples, histogram);
    const monitor::Buckets recent =
        monitor::Difference(all, monitor::BucketsOf(before.samples, histogram));
    return !recent.empty() && recent.back().second > 0 ? recent : all;
  };
  auto percentiles = [&](std::string_view histogram) {
    const monitor::Buckets b = window(histogram);
    return fmt::format("p50 {:>9}  p99 {:>9}", Ms(monitor::Quantile(b, 0.5)),
                       Ms(monitor::Quantile(b, 0.99)));
  };
  const double usage = Value(now, "slimlm_kv_cache_usage_ratio");
  const int filled = static_cast<int>(usage * 30 + 0.5);
  const double queries = Value(now, "slimlm_prefix_cache_queries_total");
  const std::string model = now.samples.empty() ? "" : [&] {
    for (const auto& s : now.samples) {
      if (!s.Label("model_name").empty()) return s.Label("model_name");
    }
    return std::string();
  }();
  auto finished = [&](const char* reason) {
    return Value(now, "slimlm_request_success_total", {{"finished_reason", reason}});
  };
  const std::time_t t = std::time(nullptr);
  char clock[16];
  std::strftime(clock, sizeof clock, "%H:%M:%S", std::localtime(&t));
  std::string out;
  out += fmt::format("slimlm top  {}  model {}  {}  {}\n\n", url, model,
                     now.health.is_object() ? now.health.value("status", "?") : "?", clock);
  out += fmt::format(
      "requests   running {:<5} waiting {:<5} finished {:.0f} (stop {:.0f}, length "
      "{:.0f}, timeout {:.0f}, cancelled {:.0f})\n",
      Value(now, "slimlm_num_requests_running"), Value(now, "slimlm_num_requests_waiting"),
      Value(now, "slimlm_e2e_request_latency_seconds_count"), finished("stop"), finished("length"),
      finished("timeout"), finished("cancelled"));
  const double steps = rate("slimlm_iteration_tokens_count");
  out += fmt::format(
      "tokens/s   generated {:<9.1f} prompt {:<9.1f} steps/s {:.1f} ({:.1f} tokens "
      "each)\n",
      rate("slimlm_generation_tokens_total"), rate("slimlm_prompt_tokens_total"), steps,
      steps > 0 ? rate("slimlm_iteration_tokens_sum") / steps : 0.0);
  out +=
      fmt::format("KV cache   [{}{}] {:5.1f}%  of {}   prefix cache hits {:.0f}%\n",
                  std::string(static_cast<size_t>(filled), '#'),
                  std::string(static_cast<size_t>(30 - filled), '-'), usage * 100,
                  Bytes(Value(now, "slimlm_kv_cache_bytes")),
                  queries > 0 ? 100 * Value(now, "slimlm_prefix_cache_hits_total") / queries : 0.0);
  out += fmt::format("TTFT       {}\n", percentiles("slimlm_time_to_first_token_seconds"));
  out += fmt::format("ITL        {}\n", percentiles("slimlm_inter_token_latency_seconds"));
  out += fmt::format("e2e        {}\n", percentiles("slimlm_e2e_request_latency_seconds"));
  out += fmt::format("resources  CPU {:.0f}%   RSS {}   weights {}   bandwidth {:.2f} GB/s\n",
                     100 * rate("process_cpu_seconds_total"),
                     Bytes(Value(now, "process_resident_memory_bytes")),
                     Bytes(Value(now, "slimlm_model_weight_bytes")),
                     Value(now, "slimlm_memory_bandwidth_bytes_per_second") / 1e9);
  return out;
}

Status Top(const TopArgs& args) {
  std::string url = args.url;
  if (url.find("://") == std::string::npos) url = "http://" + url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (!url.starts_with("http://") && !url.starts_with("https://")) {
    return InvalidArgumentError("{}: not an http:// URL (http://HOST:PORT)", args.url);
  }
  httplib::Client client(url);
  if (!client.is_valid()) return InvalidArgumentError("{}: not a URL (http://HOST:PORT)", args.url);
  client.set_connection_timeout(2, 0);
  client.set_read_timeout(5, 0);
  const auto interval =
      std::chrono::milliseconds(static_cast<int64_t>(std::max(0.1, args.interval) * 1000));
  SLIMLM_ASSIGN_OR_RETURN(Scrape before, Fetch(client, url));
  const bool tty = ::isatty(STDOUT_FILENO) != 0;
  for (;;) {
    std::this_thread::sleep_for(interval);
    SLIMLM_ASSIGN_OR_RETURN(Scrape now, Fetch(client, url));
    // In place on a terminal (home, clear); frame after frame otherwise.
    fmt::print("{}{}", tty && !args.once ? "\x1b[H\x1b[2J" : "", Frame(url, before, now));
    std::fflush(stdout);
    if (args.once) return Status::Ok();
    before = std::move(now);
  }
}

}  // namespace

CommandSpec TopCommand() {
  return {"top", "A terminal view of a running server's metrics", [](CLI::App* app) {
            auto args = std::make_shared<TopArgs>();
            app->add_option("url", args->url, "The server: http://HOST:PORT")->required();
            app->add_option("--interval", args->interval, "Seconds between refreshes")
                ->capture_default_str()
                ->check(CLI::Range(0.1, 3600.0));
            app->add_flag("--once", args->once, "Print one frame and exit");
            return [args] { return Top(*args); };
          }};
}

}  // namespace slimlm::tools
