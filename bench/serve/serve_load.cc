// serve_load: concurrent streaming clients against a running `slimlm serve` (or any
// OpenAI-compatible server); prints throughput and TTFT / inter-token / end-to-end latency
// percentiles as JSON.
//
//   serve_load --port 8080 --clients 16 --requests 4 --max-tokens 64 --prompt-file p.txt
#include <fstream>
#include <sstream>

#include <fmt/core.h>
#include <CLI/CLI.hpp>

#include "slimlm/serve/load_client.h"

int main(int argc, char** argv) {
  slimlm::serve::LoadTestOptions o;
  std::string prompt_file;
  CLI::App app("Load on an OpenAI-compatible server");
  app.add_option("--host", o.host)->capture_default_str();
  app.add_option("--port", o.port)->required();
  app.add_option("--api-key", o.api_key);
  app.add_option("--clients", o.clients, "Concurrent clients")->capture_default_str();
  app.add_option("--requests", o.requests, "Requests per client")->capture_default_str();
  app.add_option("--max-tokens", o.max_tokens)->capture_default_str();
  app.add_option("--prompt", o.prompt)->capture_default_str();
  app.add_option("--prompt-file", prompt_file, "Prompt text from a file");
  app.add_flag("--chat", o.chat, "Chat completions");
  CLI11_PARSE(app, argc, argv);
  if (!prompt_file.empty()) {
    std::ifstream in(prompt_file);
    if (!in) {
      fmt::print(stderr, "error: {}: cannot read\n", prompt_file);
      return 1;
    }
    std::stringstream text;
    text << in.rdbuf();
    o.prompt = text.str();
  }
  auto report = slimlm::serve::RunLoad(o);
  if (!report.ok()) {
    fmt::print(stderr, "error: {}\n", report.status().message());
    return 1;
  }
  nlohmann::json j = slimlm::serve::LoadReportJson(*report);
  j["clients"] = o.clients;
  j["requests_per_client"] = o.requests;
  j["max_tokens"] = o.max_tokens;
  for (const auto& r : report->requests) {
    if (!r.ok) {
      j["first_error"] = r.error;
      break;
    }
  }
  fmt::print("{}\n", j.dump(2));
  return report->failed == 0 ? 0 : 1;
}
