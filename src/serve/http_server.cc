#include "slimlm/serve/http_server.h"

#include <sys/socket.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <mutex>
#include <thread>

#include <fmt/core.h>
#include <httplib.h>

#include "slimlm/core/log.h"
#include "slimlm/serve/dashboard.h"

namespace slimlm::serve {
namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

// Compares without an early exit, so the time taken says nothing about the key.
bool SameSecret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  }
  return diff == 0;
}

void SendJson(httplib::Response& res, int status, const json& j) {
  res.status = status;
  res.set_content(Dump(j), "application/json");
}

void SendError(httplib::Response& res, const ApiError& e) {
  if (e.status == 429 || e.status == 503) res.set_header("Retry-After", "1");
  SendJson(res, e.status, ErrorJson(e));
}

ApiError ErrorOf(int status, std::string message, std::string type, std::string code = "") {
  ApiError e;
  e.status = status;
  e.message = std::move(message);
  e.type = std::move(type);
  e.code = std::move(code);
  return e;
}

ApiError ShuttingDown() {
  return ErrorOf(503, "the server is shutting down", "server_error", "shutting_down");
}

// One request being served; the count of them is the concurrency limit. Held by the handler
// and, for a stream, by its content provider until the last byte is written.
class Slot {
 public:
  explicit Slot(std::atomic<int>* active) : active_(active) {}
  Slot(const Slot&) = delete;
  Slot& operator=(const Slot&) = delete;
  ~Slot() { active_->fetch_sub(1); }

 private:
  std::atomic<int>* active_;
};

}  // namespace

struct HttpServer::Impl {
  EngineLoop* loop;
  ApiModel api;
  HttpServerOptions options;
  httplib::Server server;
  int port = -1;
  int listen_fd = -1;  // The listening socket, see Bind.
  std::atomic<int> active{0};
  std::atomic<bool> draining{false};
  std::atomic<int64_t> next_id{1};
  std::once_flag shutdown_once;

  std::shared_ptr<Slot> TryEnter() {
    if (active.fetch_add(1) >= options.max_connections) {
      active.fetch_sub(1);
      return nullptr;
    }
    return std::make_shared<Slot>(&active);
  }

  void Routes();
  void Generate(const httplib::Request& req, httplib::Response& res, ApiKind kind);
  void Stream(httplib::Response& res, std::shared_ptr<Slot> slot, ApiCall call,
              std::shared_ptr<RequestStream> stream, std::string id, int64_t created,
              Clock::time_point start);
  // A request's end: its request-log line and its trace span.
  void Finished(const std::string& id, const ApiCall& call, const Event& last,
                Clock::time_point start) {
    const Clock::time_point end = Clock::now();
    const double seconds = std::chrono::duration<double>(end - start).count();
    const std::string route =
        call.kind == ApiKind::kChat ? "/v1/chat/completions" : "/v1/completions";
    if (options.request_log != nullptr) {
      RequestRecord r;
      r.id = id;
      r.model = api.name;
      r.route = route;
      r.stream = call.stream;
      r.last = last;
      r.e2e_seconds = seconds;
      options.request_log->Write(r);
    }
    if (options.tracer != nullptr) {
      RequestSpan span;
      span.operation = call.kind == ApiKind::kChat ? "chat" : "text_completion";
      span.model = api.name;
      span.response_id = id;
      span.end = std::chrono::system_clock::now();
      span.start =
          span.end - std::chrono::duration_cast<std::chrono::system_clock::duration>(end - start);
      span.max_tokens = call.request.max_tokens;
      span.temperature = call.request.sampling.temperature;
      span.top_p = call.request.sampling.top_p;
      span.stream = call.stream;
      span.last = last;
      span.error = last.finish == FinishReason::kCancelled;
      options.tracer->Export(std::move(span));
    }
  }
};

void HttpServer::Impl::Routes() {
  server.new_task_queue = [n = options.max_connections + 4] { return new httplib::ThreadPool(n); };
  server.set_payload_max_length(options.max_body_bytes);
  server.set_read_timeout(30);
  server.set_keep_alive_max_count(1000);

  server.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
    // Health checks, scrapes and the dashboard (a browser page) need no key.
    if (options.api_key.empty() || req.path == "/health" || req.path == "/metrics" ||
        req.path == "/dashboard") {
      return httplib::Server::HandlerResponse::Unhandled;
    }
    const std::string auth = req.get_header_value("Authorization");
    if (!SameSecret(auth, "Bearer " + options.api_key)) {
      SendError(res, ErrorOf(401,
                             auth.empty() ? "an API key is required: Authorization: Bearer KEY"
                                          : "incorrect API key",
                             "invalid_request_error", "invalid_api_key"));
      return httplib::Server::HandlerResponse::Handled;
    }
    return httplib::Server::HandlerResponse::Unhandled;
  });
  // Errors httplib answers itself (unknown path, body too large...) get the same JSON shape.
  server.set_error_handler(httplib::Server::HandlerWithResponse([this](const httplib::Request& req,
                                                                       httplib::Response& res) {
    if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    ApiError e = ErrorOf(res.status, fmt::format("HTTP {}", res.status), "invalid_request_error");
    if (res.status == 404) {
      e.message = fmt::format("no route {} {}", req.method, req.path);
      e.code = "not_found";
    } else if (res.status == 413) {
      e.message = fmt::format("the body is larger than {} bytes", options.max_body_bytes);
    }
    SendError(res, e);
    return httplib::Server::HandlerResponse::Handled;
  }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        std::string what = "unknown error";
        try {
          std::rethrow_exception(ep);
        } catch (const std::exception& e) {
          what = e.what();
        } catch (...) {
        }
        SLIMLM_LOG(kError, "request failed: {}", what);
        SendError(res, ErrorOf(500, "internal error: " + what, "server_error"));
      });

  server.Post("/v1/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Generate(req, res, ApiKind::kCompletion);
  });
  server.Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    Generate(req, res, ApiKind::kChat);
  });
  server.Get("/v1/models", [this](const httplib::Request&, httplib::Response& res) {
    SendJson(res, 200, ModelsJson(api, std::time(nullptr)));
  });
  server.Get("/health", [this](const httplib::Request&, httplib::Response& res) {
    const EngineLoopStats s = loop->stats();
    SendJson(res, draining ? 503 : 200,
             {{"status", draining ? "shutting_down" : "ok"},
              {"model", api.name},
              {"running", s.scheduler.running},
              {"waiting", s.scheduler.waiting},
              {"in_flight", s.in_flight},
              {"kv_blocks_used", s.kv_blocks_used},
              {"kv_blocks_total", s.kv_blocks_total}});
  });
  if (options.metrics != nullptr) {
    server.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_content(options.metrics->Render(), "text/plain; version=0.0.4; charset=utf-8");
    });
    server.Get("/dashboard", [](const httplib::Request&, httplib::Response& res) {
      res.status = 200;
      res.set_header("Cache-Control", "no-cache");
      res.set_content(std::string(DashboardHtml()), "text/html; charset=utf-8");
    });
  }
  server.Post("/tokenize", [this](const httplib::Request& req, httplib::Response& res) {
    std::vector<int32_t> tokens;
    ApiError e;
    if (!ParseTokenize(req.body, api, &tokens, &e)) return SendError(res, e);
    SendJson(res, 200,
             {{"tokens", tokens}, {"count", tokens.size()}, {"max_model_len", api.context}});
  });
  server.Post("/detokenize", [this](const httplib::Request& req, httplib::Response& res) {
    std::string text;
    ApiError e;
    if (!ParseDetokenize(req.body, api, &text, &e)) return SendError(res, e);
    SendJson(res, 200, {{"prompt", text}});
  });
}

void HttpServer::Impl::Generate(const httplib::Request& req, httplib::Response& res, ApiKind kind) {
  const Clock::time_point start = Clock::now();
  if (draining) return SendError(res, ShuttingDown());
  std::shared_ptr<Slot> slot = TryEnter();
  if (slot == nullptr) {
    return SendError(res, ErrorOf(503,
                                  fmt::format("the server is serving {} requests, its limit; "
                                              "retry shortly",
                                              options.max_connections),
                                  "server_error", "overloaded"));
  }
  ApiCall call;
  ApiError error;
  if (!ParseApiCall(req.body, kind, api, &call, &error)) return SendError(res, error);
  Result<std::shared_ptr<RequestStream>> stream = loop->Submit(call.request);
  if (!stream.ok()) {
    switch (stream.status().code()) {
      case StatusCode::kResourceExhausted:
        return SendError(res, ErrorOf(429, std::string(stream.status().message()),
                                      "rate_limit_error", "queue_full"));
      case StatusCode::kFailedPrecondition:
        return SendError(res, ShuttingDown());
      default:
        return SendError(
            res, ErrorOf(400, std::string(stream.status().message()), "invalid_request_error"));
    }
  }
  const std::string id =
      fmt::format("{}-{}", kind == ApiKind::kChat ? "chatcmpl" : "cmpl", next_id.fetch_add(1));
  const int64_t created = std::time(nullptr);
  if (call.stream) {
    return Stream(res, std::move(slot), std::move(call), std::move(*stream), id, created, start);
  }
  // A whole answer. A client that leaves meanwhile is not noticed (httplib does not say);
  // max_tokens and the request timeout bound the work.
  std::string text;
  Event last;
  while (last.finish == FinishReason::kNone) {
    for (Event& e : (*stream)->Wait(std::chrono::milliseconds(500))) {
      text += e.text;
      if (e.finish != FinishReason::kNone) last = std::move(e);
    }
  }
  Finished(id, call, last, start);
  if (Status failed = (*stream)->failed(); !failed.ok()) {
    return SendError(
        res, ErrorOf(500, "the engine failed: " + std::string(failed.message()), "server_error"));
  }
  if (last.finish == FinishReason::kCancelled) return SendError(res, ShuttingDown());
  SendJson(res, 200, ApiAnswer(call, api, id, created, text, last));
}

void HttpServer::Impl::Stream(httplib::Response& res, std::shared_ptr<Slot> slot, ApiCall call,
                              std::shared_ptr<RequestStream> stream, std::string id,
                              int64_t created, Clock::time_point start) {
  struct State {
    std::shared_ptr<Slot> slot;
    ApiCall call;
    std::shared_ptr<RequestStream> stream;
    std::string id;
    int64_t created;
    Clock::time_point start;
    bool first = true;
  };
  auto st = std::make_shared<State>(
      State{std::move(slot), std::move(call), std::move(stream), std::move(id), created, start});
  res.status = 200;
  res.set_header("Cache-Control", "no-cache");
  res.set_header("X-Accel-Buffering", "no");
  res.set_chunked_content_provider(
      "text/event-stream",
      [this, st](size_t, httplib::DataSink& sink) {
        std::vector<Event> events = st->stream->Wait(std::chrono::milliseconds(200));
        std::string out;
        bool done = false;
        for (const Event& e : events) {
          if (e.finish != FinishReason::kNone) Finished(st->id, st->call, e, st->start);
          if (e.finish == FinishReason::kCancelled) {
            const Status failed = st->stream->failed();
            const ApiError error =
                failed.ok() ? ShuttingDown()
                            : ErrorOf(500, "the engine failed: " + std::string(failed.message()),
                                      "server_error");
            out += "data: " + Dump(ErrorJson(error)) + "\n\n";
            done = true;
            break;
          }
          if (st->first || !e.text.empty() || e.finish != FinishReason::kNone) {
            out += "data: " +
                   Dump(ApiChunk(st->call, api, st->id, st->created, e.text, st->first, e.finish)) +
                   "\n\n";
            st->first = false;
          }
          if (e.finish != FinishReason::kNone) {
            if (st->call.include_usage) {
              out += "data: " + Dump(ApiUsageChunk(st->call, api, st->id, st->created, e)) + "\n\n";
            }
            out += "data: [DONE]\n\n";
            done = true;
          }
        }
        // A failed write is a client that left: its request ends and its blocks are freed.
        if (!out.empty() && !sink.write(out.data(), out.size())) {
          st->stream->Cancel();
          return false;
        }
        if (out.empty() && !sink.is_writable()) {
          st->stream->Cancel();
          return false;
        }
        if (done) sink.done();
        return true;
      },
      [st](bool success) {
        if (!success) st->stream->Cancel();
      });
}

HttpServer::HttpServer(EngineLoop* loop, ApiModel api, HttpServerOptions options)
    : impl_(std::make_unique<Impl>()) {
  impl_->loop = loop;
  impl_->api = std::move(api);
  impl_->options = std::move(options);
  impl_->Routes();
}

HttpServer::~HttpServer() = default;

Status HttpServer::Bind() {
  const HttpServerOptions& o = impl_->options;
  // httplib listens with a backlog of 5: sixteen clients connecting at once overflow it, and
  // the kernel drops their handshakes (a client then waits a second or fails). The socket is
  // kept here so that listen() can be called again with a real backlog (Linux updates it).
  // Only SO_REUSEADDR, not httplib's SO_REUSEPORT: a second server on the port must fail.
  impl_->server.set_socket_options([impl = impl_.get()](int sock) {
    const int yes = 1;
    ::setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    impl->listen_fd = sock;
  });
  if (o.port == 0) {
    impl_->port = impl_->server.bind_to_any_port(o.host);
  } else if (impl_->server.bind_to_port(o.host, o.port)) {
    impl_->port = o.port;
  }
  if (impl_->port <= 0) {
    return IoError("cannot listen on {}:{} (address in use, or not an address of this machine?)",
                   o.host, o.port);
  }
  if (impl_->listen_fd >= 0 && ::listen(impl_->listen_fd, SOMAXCONN) != 0) {
    return IoError("cannot listen on {}:{}: {}", o.host, impl_->port, std::strerror(errno));
  }
  return Status::Ok();
}

int HttpServer::port() const { return impl_->port; }

Status HttpServer::Serve() {
  if (impl_->port <= 0) SLIMLM_RETURN_IF_ERROR(Bind());
  const bool ok = impl_->server.listen_after_bind();
  if (!ok && !impl_->draining) return IoError("the server stopped listening");
  return Status::Ok();
}

void HttpServer::Shutdown(std::chrono::milliseconds grace) {
  std::call_once(impl_->shutdown_once, [&] {
    Impl& s = *impl_;
    s.draining = true;
    const auto until = Clock::now() + grace;
    auto wait = [&](Clock::time_point deadline, auto busy) {
      while (busy() && Clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    };
    wait(until, [&] { return s.loop->stats().in_flight > 0 || s.active > 0; });
    s.loop->CancelAll();
    // The cancelled requests' handlers write their last words.
    wait(Clock::now() + std::chrono::seconds(2), [&] { return s.active > 0; });
    s.server.stop();
  });
}

}  // namespace slimlm::serve
