// slimlm serve: the OpenAI-compatible HTTP server over the continuous-batching engine.
// SIGTERM or SIGINT starts a graceful shutdown (new requests get 503, those in flight have
// --shutdown-timeout to finish, the rest are cancelled); a second signal exits at once.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include <fmt/core.h>

#include "slimlm/monitor/gpu_metrics.h"
#include "slimlm/monitor/metrics.h"
#include "slimlm/monitor/process_metrics.h"
#include "slimlm/serve/chat_template.h"
#include "slimlm/serve/engine_loop.h"
#include "slimlm/serve/http_server.h"
#include "tools/command.h"
#include "tools/common.h"
#include "tools/profile_report.h"

namespace slimlm::tools {
namespace {

struct ServeArgs {
  std::string model;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_key;
  std::string model_name;
  std::string chat_template;
  int threads = 0;
  int64_t ctx = 0;
  int64_t max_running = 16;
  int64_t max_waiting = 128;
  int64_t step_tokens = 256;
  int64_t block_size = 16;
  int64_t kv_blocks = 0;
  std::string kv_type = "f16";
  bool no_prefix_cache = false;
  int64_t max_body = 1 << 20;
  int64_t max_prompt_tokens = 0;
  int64_t max_tokens = 0;
  int max_connections = 64;
  double request_timeout = 0;
  double shutdown_timeout = 10;
  std::string request_log;
  std::string log_format = "json";
  std::string otlp_endpoint;
  bool no_metrics = false;
  bool profile = false;
};

// Waits for SIGINT/SIGTERM on its own thread (they are blocked everywhere else) and shuts the
// server down; before the server runs, or on a second signal, it exits at once.
class SignalWatcher {
 public:
  SignalWatcher() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGUSR1);  // Ends the watcher.
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this] { Watch(); });
  }
  ~SignalWatcher() {
    done_ = true;
    pthread_kill(thread_.native_handle(), SIGUSR1);
    thread_.join();
  }
  void Arm(serve::HttpServer* server, std::chrono::milliseconds grace) {
    grace_ = grace;
    server_ = server;
  }

 private:
  void Watch() {
    bool shutting_down = false;
    for (;;) {
      int sig = 0;
      if (sigwait(&set_, &sig) != 0 || done_) return;
      if (sig == SIGUSR1) continue;
      serve::HttpServer* server = server_.load();
      if (server == nullptr || shutting_down) {
        fmt::print(stderr, "serve: stopped by signal {}\n", sig);
        std::fflush(stderr);
        ::_exit(128 + sig);
      }
      shutting_down = true;
      fmt::print(stderr, "serve: shutting down (requests in flight have {} s)\n",
                 grace_.count() / 1000.0);
      std::fflush(stderr);
      // Shutdown waits for requests: on its own thread, so that a second signal is still seen.
      std::thread([server, grace = grace_] { server->Shutdown(grace); }).detach();
    }
  }

  sigset_t set_;
  std::thread thread_;
  std::atomic<bool> done_{false};
  std::atomic<serve::HttpServer*> server_{nullptr};
  std::chrono::milliseconds grace_{0};
};

std::string DefaultModelName(const std::string& path) {
  std::filesystem::path p(path);
  while (!p.empty() && !p.has_filename()) p = p.parent_path();  // A folder given as "dir/".
  std::string name = p.stem().string();
  return name.empty() ? "model" : name;
}

Status Serve(const ServeArgs& args) {
  ::signal(SIGPIPE, SIG_IGN);  // A client that leaves is a failed write, not a dead server.
  SignalWatcher signals;
  SLIMLM_ASSIGN_OR_RETURN(DType kv_type, ParseKvType(args.kv_type));
  SLIMLM_ASSIGN_OR_RETURN(serve::LogFormat log_format, serve::ParseLogFormat(args.log_format));
  std::unique_ptr<serve::RequestLog> request_log;  // Opened first: a bad path fails at once.
  if (!args.request_log.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(request_log, serve::RequestLog::Open(args.request_log, log_format));
  }
  std::unique_ptr<serve::OtlpExporter> tracer;  // Likewise: a bad endpoint fails at once.
  if (!args.otlp_endpoint.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(tracer, serve::OtlpExporter::Start(args.otlp_endpoint, "slimlm"));
  }
  SLIMLM_ASSIGN_OR_RETURN(auto model, LoadModelForCommand(args.model, "", true));

  serve::ApiModel api;
  api.model = model.get();
  api.name = args.model_name.empty() ? DefaultModelName(args.model) : args.model_name;
  const std::string jinja =
      model->store().metadata().GetString("tokenizer.chat_template").value_or("");
  if (!args.chat_template.empty()) {
    SLIMLM_ASSIGN_OR_RETURN(api.chat_template, serve::ParseChatTemplateName(args.chat_template));
  } else {
    bool known = false;
    api.chat_template = serve::DetectChatTemplate(jinja, &known);
    if (!known) {
      fmt::print(stderr, "serve: {}; chat uses chatml (--chat-template picks one of {})\n",
                 jinja.empty() ? "the model has no chat template"
                               : "the model's chat template is not a known family",
                 serve::ChatTemplateNames());
    }
  }

  serve::SchedulerOptions options;
  options.max_running = args.max_running;
  options.max_waiting = args.max_waiting;
  options.max_step_tokens = args.step_tokens;
  options.block_size = args.block_size;
  options.n_blocks = args.kv_blocks;
  options.max_context = args.ctx;
  options.n_threads = ResolveThreads(args.threads);
  options.kv_type = kv_type;
  options.prefix_cache = !args.no_prefix_cache;
  OpProfile profile;  // Read by the engine thread only, into the metrics.
  if (args.profile) options.profile = &profile;
  // Metrics: the process, then the server's own (their KV figures need the engine's sizes).
  monitor::Registry registry;
  monitor::RegisterProcessMetrics(registry);
  monitor::RegisterGpuMetrics(registry);  // Nothing without NVIDIA's library.
  if (args.profile) {
    // The machine's limits beside the operation counters, for achieved-over-peak ratios.
    SLIMLM_ASSIGN_OR_RETURN(ProfileLimits limits, MeasureProfileLimits(options.n_threads));
    registry
        .GetGauge("slimlm_machine_read_bandwidth_bytes_per_second",
                  "Sustained read bandwidth of this machine at the server's threads (--profile).")
        .Set(limits.read_gbs * 1e9);
    registry
        .GetGauge("slimlm_machine_fma_ops_per_second",
                  "Peak FP32 multiply-add operations per second (--profile).")
        .Set(limits.fma_gflops * 1e9);
    registry
        .GetGauge("slimlm_machine_int8_ops_per_second",
                  "Peak int8 dot-product operations per second (--profile).")
        .Set(limits.int8_gops * 1e9);
  }
  serve::ServeMetrics metrics(registry, api.name);
  SLIMLM_ASSIGN_OR_RETURN(
      auto loop, serve::EngineLoop::Start(*model, options, args.no_metrics ? nullptr : &metrics));
  const int64_t model_ctx = model->config().context_length;
  api.context = args.ctx > 0 ? std::min(args.ctx, model_ctx) : model_ctx;
  api.max_prompt_tokens = args.max_prompt_tokens > 0 ? args.max_prompt_tokens : api.context - 1;
  api.max_tokens = args.max_tokens > 0 ? args.max_tokens : api.context;
  api.request_timeout_seconds = args.request_timeout;

  serve::HttpServerOptions http;
  http.host = args.host;
  http.port = args.port;
  http.api_key = args.api_key;
  if (http.api_key.empty()) {
    if (const char* env = std::getenv("SLIMLM_API_KEY"); env != nullptr) http.api_key = env;
  }
  http.max_body_bytes = static_cast<size_t>(args.max_body);
  http.max_connections = args.max_connections;
  http.metrics = args.no_metrics ? nullptr : &registry;
  http.request_log = request_log.get();
  http.tracer = tracer.get();
  serve::HttpServer server(loop.get(), api, http);
  SLIMLM_RETURN_IF_ERROR(server.Bind());
  signals.Arm(&server,
              std::chrono::milliseconds(static_cast<int64_t>(args.shutdown_timeout * 1e3)));
  const serve::EngineLoopStats stats = loop->stats();
  fmt::print(
      "slimlm serve: {} on http://{}:{} ({} threads, up to {} requests at once, {} positions "
      "each, {} KV blocks of {}, chat template {}{})\n",
      api.name, args.host, server.port(), options.n_threads, args.max_running, api.context,
      stats.kv_blocks_total, args.block_size, serve::ChatTemplateName(api.chat_template),
      http.api_key.empty() ? "" : ", API key required");
  std::fflush(stdout);
  const Status served = server.Serve();
  loop->Stop();
  fmt::print(stderr, "serve: stopped\n");
  return served;
}

}  // namespace

CommandSpec ServeCommand() {
  return {"serve", "OpenAI-compatible HTTP server with continuous batching", [](CLI::App* app) {
            auto args = std::make_shared<ServeArgs>();
            app->add_option("model", args->model, "Model: GGUF file, HF folder or llama2.c .bin")
                ->required();
            app->add_option("--host", args->host, "Address to listen on")->capture_default_str();
            app->add_option("--port", args->port, "Port (0: any free port, printed at start)")
                ->capture_default_str()
                ->check(CLI::Range(0, 65535));
            app->add_option("--api-key", args->api_key,
                            "Require \"Authorization: Bearer KEY\" (also $SLIMLM_API_KEY)");
            app->add_option("--model-name", args->model_name,
                            "The model's id in the API (default: the file name)");
            app->add_option("--chat-template", args->chat_template,
                            "Chat template: " + serve::ChatTemplateNames() +
                                " (default: the model's, recognized)");
            AddThreadsOption(app, &args->threads);
            app->add_option("-c,--ctx", args->ctx,
                            "Positions per request, prompt and completion (0: the model's)")
                ->check(CLI::NonNegativeNumber);
            app->add_option("--max-running", args->max_running, "Requests decoded at once")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{1}, int64_t{4096}));
            app->add_option("--max-waiting", args->max_waiting,
                            "Requests queued beyond those; more get 429")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{0}, int64_t{1} << 20));
            app->add_option("--step-tokens", args->step_tokens, "Token budget of one step")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{1}, int64_t{1} << 16));
            app->add_option("--block-size", args->block_size, "Positions per KV-cache block")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{1}, int64_t{4096}));
            app->add_option("--kv-blocks", args->kv_blocks,
                            "KV-cache blocks (0: --max-running requests of -c positions)")
                ->check(CLI::NonNegativeNumber);
            app->add_option("--kv-type", args->kv_type, "KV cache type: f32, f16 or q8_0")
                ->capture_default_str();
            app->add_flag("--no-prefix-cache", args->no_prefix_cache,
                          "Do not share KV blocks between prompts with a common start");
            app->add_option("--max-body", args->max_body, "Largest request body, bytes")
                ->capture_default_str()
                ->check(CLI::Range(int64_t{1}, int64_t{1} << 30));
            app->add_option("--max-prompt-tokens", args->max_prompt_tokens,
                            "Longest prompt (0: the context less one)")
                ->check(CLI::NonNegativeNumber);
            app->add_option("--max-tokens", args->max_tokens,
                            "Largest max_tokens a request may ask (0: the context)")
                ->check(CLI::NonNegativeNumber);
            app->add_option("--max-connections", args->max_connections,
                            "Requests served at once; more get 503")
                ->capture_default_str()
                ->check(CLI::Range(1, 4096));
            app->add_option("--request-timeout", args->request_timeout,
                            "Seconds a request may take, queue included (0: none)")
                ->check(CLI::NonNegativeNumber);
            app->add_option("--shutdown-timeout", args->shutdown_timeout,
                            "Seconds requests in flight have to finish after SIGTERM")
                ->capture_default_str()
                ->check(CLI::NonNegativeNumber);
            app->add_option("--request-log", args->request_log,
                            "One line per finished request, to this file (appended) or - for "
                            "stderr");
            app->add_option("--log-format", args->log_format, "Request log lines: json or text")
                ->capture_default_str();
            app->add_flag("--profile", args->profile,
                          "Time, bytes and operations per engine operation, as metrics "
                          "(slimlm_op_*), beside this machine's measured limits");
            app->add_flag("--no-metrics", args->no_metrics,
                          "Keep no metrics (no /metrics, no /dashboard): to measure their cost");
            app->add_option("--otlp-endpoint", args->otlp_endpoint,
                            "OpenTelemetry collector (http://HOST:4318): one span per request, "
                            "OTLP/HTTP JSON");
            return [args] { return Serve(*args); };
          }};
}

}  // namespace slimlm::tools
