#include "slimlm/serve/load_client.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <thread>

#include <fmt/core.h>
#include <httplib.h>

namespace slimlm::serve {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

double Since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// One streaming request: server-sent events parsed as they arrive.
RequestTiming Send(httplib::Client& client, const LoadTestOptions& o) {
  RequestTiming r;
  json body = {{"max_tokens", o.max_tokens},
               {"temperature", o.temperature},
               {"ignore_eos", o.ignore_eos},
               {"stream", true},
               {"stream_options", {{"include_usage", true}}}};
  if (o.chat) {
    body["messages"] = json::array({{{"role", "user"}, {"content", o.prompt}}});
  } else {
    body["prompt"] = o.prompt;
  }
  httplib::Request req;
  req.method = "POST";
  req.path = o.chat ? "/v1/chat/completions" : "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  if (!o.api_key.empty()) req.set_header("Authorization", "Bearer " + o.api_key);
  const Clock::time_point t0 = Clock::now();
  Clock::time_point last = t0;
  bool first = true;
  bool done = false;
  std::string pending;  // Bytes of an event not complete yet.
  std::string raw;      // The body, for an error answer.
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    raw.append(data, std::min<size_t>(n, 4096 - std::min<size_t>(raw.size(), 4096)));
    pending.append(data, n);
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
      const std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      if (event.rfind("data: ", 0) != 0) continue;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        done = true;
        continue;
      }
      const json j = json::parse(payload, nullptr, false);
      if (j.is_discarded() || j.contains("error")) {
        r.error = payload;
        continue;
      }
      if (j.contains("usage") && j["usage"].is_object()) {
        r.completion_tokens = j["usage"].value("completion_tokens", int64_t{0});
      }
      if (!j.contains("choices") || j["choices"].empty()) continue;
      const json& c = j["choices"][0];
      std::string piece;
      if (c.contains("text")) piece = c["text"].get<std::string>();
      if (c.contains("delta") && c["delta"].contains("content")) {
        piece = c["delta"]["content"].get<std::string>();
      }
      if (c.contains("finish_reason") && c["finish_reason"].is_string()) {
        r.finish_reason = c["finish_reason"].get<std::string>();
      }
      if (piece.empty()) continue;
      const Clock::time_point now = Clock::now();
      if (first) {
        r.ttft = std::chrono::duration<double>(now - t0).count();
        first = false;
      } else {
        r.itl.push_back(std::chrono::duration<double>(now - last).count());
      }
      last = now;
      r.text += piece;
    }
    return true;
  };
  const httplib::Result res = client.send(req);
  r.e2e = Since(t0);
  if (!res) {
    r.error = fmt::format("transport error {} ({}) after {:.3f} s", static_cast<int>(res.error()),
                          httplib::to_string(res.error()), r.e2e);
  } else if (res->status != 200) {
    r.error = fmt::format("HTTP {}: {}", res->status, raw);
  } else if (!done && r.error.empty()) {
    r.error = "the stream ended without [DONE]";
  }
  r.ok = r.error.empty();
  return r;
}

}  // namespace

Percentiles ComputePercentiles(std::vector<double> v) {
  Percentiles p;
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto rank = [&](double q) {
    const size_t i = static_cast<size_t>(std::ceil(q * static_cast<double>(v.size())));
    return v[std::clamp<size_t>(i, 1, v.size()) - 1];
  };
  p.p50 = rank(0.50);
  p.p90 = rank(0.90);
  p.p99 = rank(0.99);
  p.max = v.back();
  return p;
}

Result<LoadReport> RunLoad(const LoadTestOptions& o) {
  if (o.clients < 1 || o.requests < 1) {
    return InvalidArgumentError("clients and requests must be at least 1");
  }
  std::vector<std::vector<RequestTiming>> per_client(static_cast<size_t>(o.clients));
  const Clock::time_point t0 = Clock::now();
  {
    std::vector<std::jthread> threads;
    for (int c = 0; c < o.clients; ++c) {
      threads.emplace_back([&, c] {
        httplib::Client client(o.host, o.port);
        const auto whole = static_cast<time_t>(o.timeout_seconds);
        client.set_read_timeout(whole, 0);
        client.set_write_timeout(whole, 0);
        client.set_keep_alive(true);
        for (int i = 0; i < o.requests; ++i) {
          per_client[static_cast<size_t>(c)].push_back(Send(client, o));
        }
      });
    }
  }
  LoadReport report;
  report.seconds = Since(t0);
  std::vector<double> ttft, itl, e2e;
  for (auto& client : per_client) {
    for (RequestTiming& r : client) {
      if (r.ok) {
        ++report.ok;
        report.completion_tokens += r.completion_tokens;
        ttft.push_back(r.ttft);
        e2e.push_back(r.e2e);
        itl.insert(itl.end(), r.itl.begin(), r.itl.end());
      } else {
        ++report.failed;
      }
      report.requests.push_back(std::move(r));
    }
  }
  if (report.ok == 0 && report.failed > 0 && report.requests[0].error.starts_with("transport")) {
    return IoError("cannot reach {}:{}: {}", o.host, o.port, report.requests[0].error);
  }
  report.tokens_per_second = static_cast<double>(report.completion_tokens) / report.seconds;
  report.ttft = ComputePercentiles(std::move(ttft));
  report.itl = ComputePercentiles(std::move(itl));
  report.e2e = ComputePercentiles(std::move(e2e));
  return report;
}

json LoadReportJson(const LoadReport& r) {
  auto ms = [](const Percentiles& p) {
    return json{
        {"p50", p.p50 * 1e3}, {"p90", p.p90 * 1e3}, {"p99", p.p99 * 1e3}, {"max", p.max * 1e3}};
  };
  return {{"requests_ok", r.ok},
          {"requests_failed", r.failed},
          {"completion_tokens", r.completion_tokens},
          {"seconds", r.seconds},
          {"generation_tokens_per_second", r.tokens_per_second},
          {"ttft_ms", ms(r.ttft)},
          {"itl_ms", ms(r.itl)},
          {"e2e_ms", ms(r.e2e)}};
}

}  // namespace slimlm::serve
