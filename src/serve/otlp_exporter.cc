#include "slimlm/serve/otlp_exporter.h"

#include <random>

#include <fmt/core.h>
#include <httplib.h>

namespace slimlm::serve {
namespace {

using nlohmann::json;

constexpr size_t kMaxQueued = 4096;
constexpr size_t kBatch = 256;

std::string RandomHex(std::mt19937_64& rng, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; i += 8) out += fmt::format("{:016x}", rng());
  return out.substr(0, static_cast<size_t>(bytes) * 2);
}

std::string UnixNanos(std::chrono::system_clock::time_point t) {
  return std::to_string(
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count());
}

json Attr(const std::string& key, const json& value) {
  json v;
  if (value.is_string()) {
    v = {{"stringValue", value}};
  } else if (value.is_boolean()) {
    v = {{"boolValue", value}};
  } else if (value.is_number_integer()) {
    v = {{"intValue", std::to_string(value.get<int64_t>())}};  // OTLP/JSON: int64 as a string.
  } else if (value.is_number()) {
    v = {{"doubleValue", value}};
  } else if (value.is_array()) {
    json values = json::array();
    for (const json& s : value) values.push_back({{"stringValue", s}});
    v = {{"arrayValue", {{"values", values}}}};
  }
  return {{"key", key}, {"value", v}};
}

}  // namespace

Result<std::unique_ptr<OtlpExporter>> OtlpExporter::Start(const std::string& endpoint,
                                                          const std::string& service_name) {
  if (!endpoint.starts_with("http://") && !endpoint.starts_with("https://")) {
    return InvalidArgumentError("--otlp-endpoint {}: not an http:// URL", endpoint);
  }
  // http://host:port[/base] -> client URL and the traces path.
  const size_t path_at = endpoint.find('/', endpoint.find("://") + 3);
  std::string host = endpoint.substr(0, path_at);
  std::string base = path_at == std::string::npos ? "" : endpoint.substr(path_at);
  while (!base.empty() && base.back() == '/') base.pop_back();
  const std::string path = base.ends_with("/v1/traces") ? base : base + "/v1/traces";
  return std::unique_ptr<OtlpExporter>(new OtlpExporter(host, path, service_name));
}

OtlpExporter::OtlpExporter(std::string host_url, std::string path, std::string service_name)
    : host_url_(std::move(host_url)),
      path_(std::move(path)),
      service_name_(std::move(service_name)) {
  thread_ = std::thread([this] { Run(); });
}

OtlpExporter::~OtlpExporter() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  thread_.join();
}

void OtlpExporter::Export(RequestSpan span) {
  {
    std::lock_guard lock(mu_);
    if (queue_.size() >= kMaxQueued) {
      dropped_.fetch_add(1);
      return;
    }
    queue_.push_back(std::move(span));
  }
  cv_.notify_all();
}

OtlpStats OtlpExporter::stats() const { return {exported_.load(), dropped_.load()}; }

json OtlpExporter::TracesJson(const std::vector<RequestSpan>& spans,
                              const std::string& service_name) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  json out = json::array();
  for (const RequestSpan& s : spans) {
    const Event& e = s.last;
    json attrs = json::array({
        Attr("gen_ai.operation.name", s.operation),
        Attr("gen_ai.system", "slimlm"),
        Attr("gen_ai.request.model", s.model),
        Attr("gen_ai.request.max_tokens", s.max_tokens),
        Attr("gen_ai.request.temperature", s.temperature),
        Attr("gen_ai.request.top_p", s.top_p),
        Attr("gen_ai.response.model", s.model),
        Attr("gen_ai.response.id", s.response_id),
        Attr("gen_ai.usage.input_tokens", e.prompt_tokens),
        Attr("gen_ai.usage.output_tokens", e.completion_tokens),
        Attr("gen_ai.response.finish_reasons", json::array({FinishReasonName(e.finish)})),
        Attr("slimlm.request.stream", s.stream),
        Attr("slimlm.usage.cached_tokens", e.cached_tokens),
        Attr("slimlm.queue_seconds", e.queue_seconds),
        Attr("slimlm.prefill_seconds", e.prefill_seconds),
        Attr("slimlm.decode_seconds", e.decode_seconds),
    });
    out.push_back({{"traceId", RandomHex(rng, 16)},
                   {"spanId", RandomHex(rng, 8)},
                   {"name", s.operation + " " + s.model},
                   {"kind", 2},  // SPAN_KIND_SERVER
                   {"startTimeUnixNano", UnixNanos(s.start)},
                   {"endTimeUnixNano", UnixNanos(s.end)},
                   {"attributes", attrs},
                   {"status", {{"code", s.error ? 2 : 1}}}});  // ERROR or OK
  }
  return {
      {"resourceSpans",
       json::array(
           {{{"resource", {{"attributes", json::array({Attr("service.name", service_name)})}}},
             {"scopeSpans", json::array({{{"scope", {{"name", "slimlm"}}}, {"spans", out}}})}}})}};
}

void OtlpExporter::Run() {
  httplib::Client client(host_url_);
  // A collector gets little time: a span is worth less than a request.
  client.set_connection_timeout(1, 0);
  client.set_read_timeout(2, 0);
  client.set_write_timeout(2, 0);
  for (;;) {
    std::vector<RequestSpan> batch;
    bool stopping = false;
    {
      std::unique_lock lock(mu_);
      // Batches: up to a second for more spans to come along.
      cv_.wait_for(lock, std::chrono::seconds(1),
                   [&] { return stopping_ || queue_.size() >= kBatch; });
      stopping = stopping_;
      while (!queue_.empty() && batch.size() < kBatch) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
    }
    if (!batch.empty()) {
      const std::string body =
          TracesJson(batch, service_name_).dump(-1, ' ', false, json::error_handler_t::replace);
      const httplib::Result res = client.Post(path_, body, "application/json");
      if (res && res->status >= 200 && res->status < 300) {
        exported_.fetch_add(static_cast<int64_t>(batch.size()));
      } else {
        dropped_.fetch_add(static_cast<int64_t>(batch.size()));
      }
    }
    if (stopping) {
      std::lock_guard lock(mu_);
      if (queue_.empty()) return;
    }
  }
}

}  // namespace slimlm::serve
