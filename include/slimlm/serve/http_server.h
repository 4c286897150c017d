// The OpenAI-compatible HTTP server (cpp-httplib): routes, authentication, limits, streaming
// with server-sent events, and a graceful shutdown. Generation goes through one EngineLoop.
//
//   POST /v1/completions, /v1/chat/completions   (stream true: server-sent events)
//   GET  /v1/models, /health, /metrics (Prometheus text format) and /dashboard (a live page),
//        the last two when a registry is given
//   POST /tokenize, /detokenize
//
// Every error is OpenAI's {"error": {...}} with its status: 400 bad request, 401 missing or
// wrong API key, 404 unknown path or model, 413 body too large, 429 queue full and 503 too many
// requests at once or shutting down (both with Retry-After), 500 engine failure.
#ifndef SLIMLM_SERVE_HTTP_SERVER_H_
#define SLIMLM_SERVE_HTTP_SERVER_H_

#include <chrono>
#include <memory>
#include <string>

#include "slimlm/core/status.h"
#include "slimlm/monitor/metrics.h"
#include "slimlm/serve/engine_loop.h"
#include "slimlm/serve/openai_api.h"
#include "slimlm/serve/otlp_exporter.h"
#include "slimlm/serve/request_log.h"

namespace slimlm::serve {

struct HttpServerOptions {
  std::string host = "127.0.0.1";
  int port = 8080;  // 0: a free port, see HttpServer::port().
  // When set, every route but /health, /metrics and /dashboard needs "Authorization: Bearer
  // KEY".
  std::string api_key;
  size_t max_body_bytes = 1 << 20;
  int max_connections = 64;                    // Requests served at once (and HTTP worker threads).
  const monitor::Registry* metrics = nullptr;  // Served at /metrics; must outlive the server.
  RequestLog* request_log = nullptr;           // One line per finished request; must outlive.
  OtlpExporter* tracer = nullptr;              // One span per finished request; must outlive.
};

class HttpServer {
 public:
  // `loop` and the model must outlive the server.
  HttpServer(EngineLoop* loop, ApiModel api, HttpServerOptions options);
  ~HttpServer();

  // Binds the listening socket (so that the port is known before Serve).
  Status Bind();
  int port() const;
  // Answers requests until Shutdown; returns when the listener is closed.
  Status Serve();
  // Stops taking new requests (503), lets those in flight finish for up to `grace`, cancels the
  // rest (a stream gets an error event, a waiting answer a 503), then closes the listener.
  // Callable from any thread (a signal watcher), once.
  void Shutdown(std::chrono::milliseconds grace);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_HTTP_SERVER_H_
