// The HTTP server in-process, on 127.0.0.1 and a free port, with real HTTP clients: answers equal
// the scheduler's own greedy text, streamed or whole; sixteen clients at once each get their own
// complete answer; a client that leaves mid-stream frees its KV blocks; every bad request gets
// OpenAI's error shape and the right status while the server keeps serving; the queue limit
// answers 429, the concurrency limit and shutdown 503; a bounded load run reports latencies.
#include "slimlm/serve/http_server.h"

#include <atomic>
#include <chrono>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <fmt/core.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "slimlm/model/model.h"
#include "slimlm/monitor/process_metrics.h"
#include "slimlm/serve/load_client.h"
#include "support/server_process.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

struct Answer {
  int status = 0;
  json body;
  std::string retry_after;
};

// A server on its own thread; stopped and joined by the destructor.
struct LiveServer {
  std::unique_ptr<monitor::Registry> registry;
  std::unique_ptr<ServeMetrics> metrics;
  std::unique_ptr<EngineLoop> loop;
  std::unique_ptr<HttpServer> server;
  std::thread thread;
  int port = 0;

  ~LiveServer() {
    server->Shutdown(0ms);
    thread.join();
    loop->Stop();
  }

  Answer Post(const std::string& path, const std::string& body,
              const httplib::Headers& headers = {}) const {
    httplib::Client client("127.0.0.1", port);
    client.set_read_timeout(60, 0);
    httplib::Result res = client.Post(path.c_str(), headers, body, "application/json");
    Answer a;
    if (!res) return a;
    a.status = res->status;
    a.body = json::parse(res->body, nullptr, false);
    a.retry_after = res->get_header_value("Retry-After");
    return a;
  }
  Answer Get(const std::string& path, const httplib::Headers& headers = {}) const {
    httplib::Client client("127.0.0.1", port);
    httplib::Result res = client.Get(path.c_str(), headers);
    Answer a;
    if (!res) return a;
    a.status = res->status;
    a.body = json::parse(res->body, nullptr, false);
    a.retry_after = res->get_header_value("Retry-After");
    return a;
  }
  // Polls /health until `done` holds for it (5 s at most).
  template <typename F>
  json WaitHealth(F done) const {
    json h;
    for (int i = 0; i < 500; ++i) {
      h = Get("/health").body;
      if (done(h)) break;
      std::this_thread::sleep_for(10ms);
    }
    return h;
  }
};

// The events of one streamed request, and the text they carry.
struct Streamed {
  int status = 0;
  std::vector<json> chunks;
  bool done = false;
  std::string text;
  std::string finish;
  json usage;
  json error;
};

// Streams `body` to `path`; `keep` is asked after each event whether to go on reading.
Streamed Stream(int port, const std::string& path, const json& body,
                const std::function<bool(const Streamed&)>& keep = nullptr) {
  Streamed s;
  std::string pending;
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(60, 0);
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    pending.append(data, n);
    for (size_t end; (end = pending.find("\n\n")) != std::string::npos;) {
      const std::string event = pending.substr(0, end);
      pending.erase(0, end + 2);
      EXPECT_EQ(event.rfind("data: ", 0), 0u) << event;
      const std::string payload = event.substr(6);
      if (payload == "[DONE]") {
        s.done = true;
        continue;
      }
      json j = json::parse(payload);
      if (j.contains("error")) {
        s.error = j;
        continue;
      }
      if (j.contains("usage") && j["usage"].is_object()) s.usage = j["usage"];
      if (!j["choices"].empty()) {
        const json& c = j["choices"][0];
        if (c.contains("text")) s.text += c["text"].get<std::string>();
        if (c.contains("delta") && c["delta"].contains("content")) {
          s.text += c["delta"]["content"].get<std::string>();
        }
        if (c["finish_reason"].is_string()) s.finish = c["finish_reason"];
      }
      s.chunks.push_back(std::move(j));
      if (keep && !keep(s)) return false;
    }
    return true;
  };
  httplib::Result res = client.send(req);
  if (res) s.status = res->status;
  return s;
}

// The value of one series in an exposition, e.g. `name{model_name="stories"}`; -1 if absent.
double MetricValue(const std::string& text, const std::string& series) {
  const size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

json HttpServerTestGreedy(int64_t max_tokens) {
  return {{"prompt", "Once upon a time"},
          {"max_tokens", max_tokens},
          {"temperature", 0},
          {"ignore_eos", true}};
}

class HttpServerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto model = Model::Load(testing::DefaultModelPath(), LoadOptions{});
    SLIMLM_CHECK(model.ok()) << model.status().ToString();
    model_ = std::move(*model).release();
  }
  static void TearDownTestSuite() {
    delete model_;
    model_ = nullptr;
  }

  static ApiModel Api() {
    ApiModel api;
    api.model = model_;
    api.name = "stories";
    api.context = model_->config().context_length;
    api.max_prompt_tokens = api.context - 1;
    api.max_tokens = api.context;
    return api;
  }

  static std::unique_ptr<LiveServer> Start(SchedulerOptions options = {},
                                           HttpServerOptions http = {}, ApiModel api = Api()) {
    auto live = std::make_unique<LiveServer>();
    options.n_threads = 1;
    live->registry = std::make_unique<monitor::Registry>();
    monitor::RegisterProcessMetrics(*live->registry);
    live->metrics = std::make_unique<ServeMetrics>(*live->registry, api.name);
    auto loop = EngineLoop::Start(*model_, options, live->metrics.get());
    SLIMLM_CHECK(loop.ok()) << loop.status().ToString();
    live->loop = std::move(*loop);
    http.port = 0;
    http.metrics = live->registry.get();
    live->server = std::make_unique<HttpServer>(live->loop.get(), api, http);
    const Status bound = live->server->Bind();
    SLIMLM_CHECK(bound.ok()) << bound.ToString();
    live->port = live->server->port();
    live->thread = std::thread([s = live->server.get()] { (void)s->Serve(); });
    return live;
  }

  // The greedy text the scheduler gives this prompt alone.
  static std::string Alone(const std::string& prompt, int64_t max_tokens) {
    SchedulerOptions options;
    options.n_threads = 1;
    auto scheduler = Scheduler::Create(*model_, options);
    SLIMLM_CHECK(scheduler.ok());
    Request r;
    r.prompt = model_->tokenizer()->Encode(prompt, true, true);
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    r.sampling.temperature = 0;
    SLIMLM_CHECK((*scheduler)->Submit(r).ok());
    std::string text;
    std::vector<Event> events;
    while (!(*scheduler)->Idle()) {
      events.clear();
      SLIMLM_CHECK((*scheduler)->Step(&events).ok());
      for (const Event& e : events) text += e.text;
    }
    return text;
  }

  static json Greedy(const std::string& prompt, int64_t max_tokens, bool stream = false) {
    return {{"prompt", prompt},
            {"max_tokens", max_tokens},
            {"temperature", 0},
            {"ignore_eos", true},
            {"stream", stream}};
  }

  static inline Model* model_ = nullptr;
};

TEST_F(HttpServerTest, CompletionIsTheSchedulersGreedyText) {
  auto live = Start();
  const std::string prompt = "Once upon a time, a little fox";
  const Answer a = live->Post("/v1/completions", Greedy(prompt, 24).dump());
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body["object"], "text_completion");
  EXPECT_EQ(a.body["model"], "stories");
  EXPECT_EQ(a.body["choices"][0]["text"], Alone(prompt, 24));
  EXPECT_EQ(a.body["choices"][0]["finish_reason"], "length");
  const int64_t prompt_tokens =
      static_cast<int64_t>(model_->tokenizer()->Encode(prompt, true, true).size());
  EXPECT_EQ(a.body["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(a.body["usage"]["completion_tokens"], 24);
  EXPECT_EQ(a.body["usage"]["total_tokens"], prompt_tokens + 24);

  // The same request streamed: the chunks add up to the same text, then the usage, then [DONE].
  json body = Greedy(prompt, 24, true);
  body["stream_options"] = {{"include_usage", true}};
  const Streamed s = Stream(live->port, "/v1/completions", body);
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.text, a.body["choices"][0]["text"]);
  EXPECT_EQ(s.finish, "length");
  EXPECT_EQ(s.usage["completion_tokens"], 24);
  // Prompt tokens come from the prefix cache the second time (full blocks of 16).
  EXPECT_EQ(s.usage["prompt_tokens_details"]["cached_tokens"], (prompt_tokens - 1) / 16 * 16);
  ASSERT_FALSE(s.chunks.empty());
  // One chunk has the finish reason: the last with a choice (the usage chunk has none).
  int finishes = 0;
  for (const json& chunk : s.chunks) {
    if (!chunk["choices"].empty()) finishes += chunk["choices"][0]["finish_reason"].is_string();
  }
  EXPECT_EQ(finishes, 1);
  EXPECT_TRUE(s.chunks.back()["choices"].empty());
}

TEST_F(HttpServerTest, ChatFollowsTheTemplateAndStreamsDeltas) {
  auto live = Start();
  const json messages = json::array({{{"role", "system"}, {"content", "Tell stories."}},
                                     {{"role", "user"}, {"content", "A story about a cat."}}});
  const json body = {
      {"messages", messages}, {"max_tokens", 12}, {"temperature", 0}, {"ignore_eos", true}};
  const Answer a = live->Post("/v1/chat/completions", body.dump());
  ASSERT_EQ(a.status, 200) << a.body.dump();
  EXPECT_EQ(a.body["object"], "chat.completion");
  EXPECT_EQ(a.body["choices"][0]["message"]["role"], "assistant");
  const std::string text = a.body["choices"][0]["message"]["content"];
  const std::vector<ChatMessage> conversation = {{"system", "Tell stories."},
                                                 {"user", "A story about a cat."}};
  const std::string prompt = *ApplyChatTemplate(ChatTemplate::kChatMl, conversation);
  EXPECT_EQ(a.body["usage"]["prompt_tokens"],
            model_->tokenizer()->Encode(prompt, true, true).size());
  // The chat's answer is the completion of the templated prompt, unless a template stop string
  // ended it first.
  if (a.body["choices"][0]["finish_reason"] == "length") {
    EXPECT_EQ(text, Alone(prompt, 12));
  }

  json streamed = body;
  streamed["stream"] = true;
  const Streamed s = Stream(live->port, "/v1/chat/completions", streamed);
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.text, text);
  ASSERT_FALSE(s.chunks.empty());
  EXPECT_EQ(s.chunks[0]["object"], "chat.completion.chunk");
  EXPECT_EQ(s.chunks[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(s.finish, a.body["choices"][0]["finish_reason"]);
}

TEST_F(HttpServerTest, SixteenClientsAtOnceGetTheirOwnAnswers) {
  auto live = Start();
  std::vector<std::string> prompts;
  std::vector<std::string> expected;
  for (int i = 0; i < 16; ++i) {
    prompts.push_back(fmt::format("Story {}: once there was a {} who liked {}", i,
                                  i % 2 ? "dog" : "girl", i % 3 ? "cake" : "the sea"));
    expected.push_back(Alone(prompts.back(), 20 + i));
  }
  std::vector<std::string> got(16);
  std::vector<std::string> finish(16);
  {
    std::vector<std::jthread> clients;
    for (int i = 0; i < 16; ++i) {
      clients.emplace_back([&, i] {
        if (i % 2 == 0) {
          const Streamed s =
              Stream(live->port, "/v1/completions", Greedy(prompts[i], 20 + i, true));
          got[i] = s.text;
          finish[i] = s.done ? s.finish : "no [DONE]";
        } else {
          const Answer a = live->Post("/v1/completions", Greedy(prompts[i], 20 + i).dump());
          if (a.status == 200) {
            got[i] = a.body["choices"][0]["text"];
            finish[i] = a.body["choices"][0]["finish_reason"];
          }
        }
      });
    }
  }
  for (int i = 0; i < 16; ++i) {
    EXPECT_EQ(got[i], expected[i]) << "client " << i;
    EXPECT_EQ(finish[i], "length") << "client " << i;
  }
  const json h = live->WaitHealth([](const json& j) { return j["in_flight"] == 0; });
  EXPECT_EQ(h["in_flight"], 0);
  EXPECT_EQ(h["kv_blocks_used"], 0);
}

TEST_F(HttpServerTest, AClientThatLeavesMidStreamFreesItsBlocks) {
  auto live = Start();
  // Read three events of a long request, then hang up.
  const Streamed s = Stream(live->port, "/v1/completions", Greedy("Once upon a time", 200, true),
                            [](const Streamed& st) { return st.chunks.size() < 3; });
  EXPECT_EQ(s.chunks.size(), 3u);
  EXPECT_FALSE(s.done);
  const json h = live->WaitHealth([](const json& j) { return j["in_flight"] == 0; });
  EXPECT_EQ(h["in_flight"], 0) << h.dump();
  EXPECT_EQ(h["kv_blocks_used"], 0) << h.dump();
  EXPECT_EQ(h["running"], 0) << h.dump();
  EXPECT_EQ(live->loop->stats().cancelled, 1);  // Cancelled, not run to its end.
  // The server goes on serving.
  EXPECT_EQ(live->Post("/v1/completions", Greedy("Hello", 4).dump()).status, 200);
}

TEST_F(HttpServerTest, BadRequestsGetOpenAisErrorShape) {
  HttpServerOptions http;
  http.max_body_bytes = 4096;
  auto live = Start({}, http);
  struct Case {
    std::string path, body;
    int status;
    std::string param, code;
  };
  const std::string big(5000, 'a');
  const std::vector<Case> cases = {
      {"/v1/completions", "{not json", 400, "", ""},
      {"/v1/completions", "[1, 2]", 400, "", ""},
      {"/v1/completions", R"({"prompt": 7})", 400, "prompt", ""},
      {"/v1/completions", R"({"prompt": ""})", 400, "prompt", ""},
      {"/v1/completions", R"({})", 400, "prompt", ""},
      {"/v1/completions", R"({"prompt": ["a", "b"]})", 400, "prompt", ""},
      {"/v1/completions", R"({"prompt": [1, 99999999]})", 400, "prompt", ""},
      {"/v1/completions", R"({"prompt": "hi", "model": "gpt-4"})", 404, "model", "model_not_found"},
      {"/v1/completions", R"({"prompt": "hi", "model": 3})", 400, "model", ""},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": -5})", 400, "max_tokens", ""},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 0})", 400, "max_tokens", ""},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 100000000000})", 400, "max_tokens", ""},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": 1e400})", 400, "", ""},
      {"/v1/completions", R"({"prompt": "hi", "max_tokens": "ten"})", 400, "max_tokens", ""},
      {"/v1/completions", R"({"prompt": "hi", "temperature": "hot"})", 400, "temperature", ""},
      {"/v1/completions", R"({"prompt": "hi", "temperature": -1})", 400, "", ""},
      {"/v1/completions", R"({"prompt": "hi", "stream": "yes"})", 400, "stream", ""},
      {"/v1/completions", R"({"prompt": "hi", "stop": [1]})", 400, "stop", ""},
      {"/v1/completions", R"({"prompt": "hi", "n": 2})", 400, "n", ""},
      {"/v1/completions", R"({"prompt": "hi", "logprobs": 3})", 400, "logprobs", ""},
      {"/v1/completions", "{\"prompt\": \"\xff\xfe\"}", 400, "", ""},
      {"/v1/completions", R"({"prompt": ")" + big + R"("})", 413, "", ""},
      {"/v1/chat/completions", R"({"messages": "hi"})", 400, "messages", ""},
      {"/v1/chat/completions", R"({"messages": []})", 400, "messages", ""},
      {"/v1/chat/completions", R"({"messages": [{"role": "robot", "content": "x"}]})", 400,
       "messages", ""},
      {"/v1/chat/completions", R"({"messages": [{"role": "user", "content": 5}]})", 400, "messages",
       ""},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}]})", 400,
       "tools", ""},
      {"/tokenize", R"({"prompt": 5})", 400, "prompt", ""},
      {"/detokenize", R"({"tokens": [-1]})", 400, "tokens", ""},
      {"/detokenize", R"({"tokens": "abc"})", 400, "tokens", ""},
      {"/v1/nothing", "{}", 404, "", "not_found"},
  };
  for (const Case& c : cases) {
    const Answer a = live->Post(c.path, c.body);
    SCOPED_TRACE(c.path + " " + c.body.substr(0, 80));
    EXPECT_EQ(a.status, c.status) << a.body.dump();
    ASSERT_TRUE(a.body.contains("error")) << a.body.dump();
    const json& e = a.body["error"];
    EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty());
    EXPECT_TRUE(e["type"].is_string());
    EXPECT_EQ(e["param"], c.param.empty() ? json() : json(c.param));
    if (!c.code.empty()) {
      EXPECT_EQ(e["code"], c.code);
    }
  }
  // A prompt longer than the context.
  std::string long_prompt;
  for (int i = 0; i < 400; ++i) long_prompt += " and then";
  HttpServerOptions roomy;
  auto live2 = Start({}, roomy);
  const Answer too_long = live2->Post("/v1/completions", json{{"prompt", long_prompt}}.dump());
  EXPECT_EQ(too_long.status, 400);
  EXPECT_EQ(too_long.body["error"]["code"], "context_length_exceeded");
  // Everyone else is still served.
  EXPECT_EQ(live->Post("/v1/completions", Greedy("Hello", 4).dump()).status, 200);
  EXPECT_EQ(live->Get("/health").status, 200);
}

TEST_F(HttpServerTest, ApiKeyIsRequiredWhereSet) {
  HttpServerOptions http;
  http.api_key = "sekret-123";
  auto live = Start({}, http);
  const std::string body = Greedy("Hi", 2).dump();
  const Answer none = live->Post("/v1/completions", body);
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.body["error"]["code"], "invalid_api_key");
  EXPECT_EQ(live->Post("/v1/completions", body, {{"Authorization", "Bearer wrong"}}).status, 401);
  EXPECT_EQ(live->Post("/v1/completions", body, {{"Authorization", "sekret-123"}}).status, 401);
  EXPECT_EQ(live->Get("/v1/models").status, 401);
  EXPECT_EQ(live->Post("/v1/completions", body, {{"Authorization", "Bearer sekret-123"}}).status,
            200);
  const Answer models = live->Get("/v1/models", {{"Authorization", "Bearer sekret-123"}});
  EXPECT_EQ(models.status, 200);
  EXPECT_EQ(models.body["data"][0]["id"], "stories");
  EXPECT_EQ(live->Get("/health").status, 200);  // For load balancers: no key.
}

TEST_F(HttpServerTest, TokenizeAndDetokenizeRoundTrip) {
  auto live = Start();
  const Answer t = live->Post("/tokenize", R"({"prompt": "Once upon a time"})");
  ASSERT_EQ(t.status, 200);
  const std::vector<int32_t> expected = model_->tokenizer()->Encode("Once upon a time", true, true);
  EXPECT_EQ(t.body["tokens"].get<std::vector<int32_t>>(), expected);
  EXPECT_EQ(t.body["count"], expected.size());
  const Answer d = live->Post("/detokenize", json{{"tokens", t.body["tokens"]}}.dump());
  ASSERT_EQ(d.status, 200);
  EXPECT_EQ(d.body["prompt"], "Once upon a time");
  const Answer chat =
      live->Post("/tokenize", R"({"messages": [{"role": "user", "content": "Hi"}]})");
  EXPECT_EQ(chat.status, 200);
  EXPECT_GT(chat.body["count"].get<int>(), 3);
}

// Eight long requests at once against a small limit: those beyond it are refused with `status`
// and Retry-After, the others complete.
void ExpectSomeRefused(const LiveServer& live, int status, const std::string& code) {
  std::vector<Answer> answers(8);
  {
    std::vector<std::jthread> clients;
    for (int i = 0; i < 8; ++i) {
      clients.emplace_back(
          [&, i] { answers[i] = live.Post("/v1/completions", HttpServerTestGreedy(200).dump()); });
    }
  }
  int refused = 0;
  for (const Answer& a : answers) {
    if (a.status == 200) {
      EXPECT_EQ(a.body["usage"]["completion_tokens"], 200);
      continue;
    }
    ++refused;
    EXPECT_EQ(a.status, status) << a.body.dump();
    EXPECT_EQ(a.retry_after, "1");
    EXPECT_EQ(a.body["error"]["code"], code);
  }
  EXPECT_GE(refused, 1);
  EXPECT_LE(refused, 8 - 1);
}

TEST_F(HttpServerTest, AFullQueueAnswers429WithRetryAfter) {
  SchedulerOptions options;
  options.max_running = 1;
  options.max_waiting = 1;
  auto live = Start(options);
  ExpectSomeRefused(*live, 429, "queue_full");
}

TEST_F(HttpServerTest, TooManyRequestsAtOnceAnswer503) {
  HttpServerOptions http;
  http.max_connections = 1;
  auto live = Start({}, http);
  ExpectSomeRefused(*live, 503, "overloaded");
}

TEST_F(HttpServerTest, ShutdownLetsRequestsInFlightFinish) {
  auto live = Start();
  Streamed s;
  std::jthread client(
      [&] { s = Stream(live->port, "/v1/completions", Greedy("Once upon a time", 200, true)); });
  live->WaitHealth([](const json& h) { return h["running"] == 1; });
  const auto t0 = std::chrono::steady_clock::now();
  std::jthread stopper([&] { live->server->Shutdown(30s); });
  // While draining: new requests and the health check get 503.
  const json h = live->WaitHealth([](const json& j) { return j["status"] == "shutting_down"; });
  EXPECT_EQ(h["status"], "shutting_down");
  const Answer refused = live->Post("/v1/completions", Greedy("C", 4).dump());
  EXPECT_EQ(refused.status, 503);
  EXPECT_EQ(refused.body["error"]["code"], "shutting_down");
  // A scrape during shutdown still gets the whole exposition.
  httplib::Client scraper("127.0.0.1", live->port);
  httplib::Result scrape = scraper.Get("/metrics");
  ASSERT_TRUE(scrape);
  EXPECT_EQ(scrape->status, 200);
  EXPECT_GE(MetricValue(scrape->body, "slimlm_num_requests_running{model_name=\"stories\"}"), 0);
  EXPECT_GT(MetricValue(scrape->body, "slimlm_generation_tokens_total{model_name=\"stories\"}"), 0);
  client.join();
  stopper.join();
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.finish, "length");
  EXPECT_EQ(s.text, Alone("Once upon a time", 200));
  // Shutdown returned once the request was done, long before its deadline.
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 20s);
}

TEST_F(HttpServerTest, ShutdownCancelsWhatOutlastsTheGrace) {
  auto live = Start();
  Streamed s;
  std::jthread client(
      [&] { s = Stream(live->port, "/v1/completions", Greedy("Once upon a time", 250, true)); });
  live->WaitHealth([](const json& h) { return h["running"] == 1; });
  live->server->Shutdown(0ms);
  client.join();
  EXPECT_FALSE(s.done);
  EXPECT_EQ(s.error["error"]["code"], "shutting_down");
  EXPECT_EQ(live->loop->stats().kv_blocks_used, 0);
  EXPECT_EQ(live->loop->stats().cancelled, 1);
}

TEST_F(HttpServerTest, BoundedLoadRunReportsLatencies) {
  auto live = Start();
  LoadTestOptions o;
  o.port = live->port;
  o.clients = 16;
  o.requests = 2;
  o.max_tokens = 16;
  o.timeout_seconds = 60;
  Result<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->ok, 32);
  for (const RequestTiming& r : report->requests) EXPECT_TRUE(r.ok) << r.error;
  EXPECT_EQ(report->completion_tokens, 32 * 16);
  EXPECT_GT(report->ttft.p50, 0);
  EXPECT_GE(report->ttft.p99, report->ttft.p50);
  EXPECT_GT(report->itl.p50, 0);
  EXPECT_GE(report->e2e.p50, report->ttft.p50);
  // Greedy and the same prompt: every client got the same text.
  for (const RequestTiming& r : report->requests) EXPECT_EQ(r.text, report->requests[0].text);
  std::printf("load (16 clients x 2 requests x 16 tokens, debug build): %s\n",
              LoadReportJson(*report).dump().c_str());
}

TEST_F(HttpServerTest, MetricsAgreeWithWhatClientsSaw) {
  auto live = Start();
  LoadTestOptions o;
  o.port = live->port;
  o.clients = 8;
  o.requests = 2;
  o.max_tokens = 12;
  Result<LoadReport> report = RunLoad(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  ASSERT_EQ(report->ok, 16);
  // A request that the server refuses is not a success of any kind.
  EXPECT_EQ(live->Post("/v1/completions", R"({"prompt": ""})").status, 400);
  live->WaitHealth([](const json& h) { return h["in_flight"] == 0; });

  httplib::Client client("127.0.0.1", live->port);
  httplib::Result res = client.Get("/metrics");
  ASSERT_TRUE(res);
  EXPECT_EQ(res->status, 200);
  EXPECT_THAT(res->get_header_value("Content-Type"), ::testing::HasSubstr("text/plain"));
  const std::string text = res->body;
  const std::string m = "{model_name=\"stories\"}";
  auto value = [&](const std::string& name) { return MetricValue(text, name + m); };
  EXPECT_EQ(value("slimlm_generation_tokens_total"), 16 * 12);
  EXPECT_EQ(MetricValue(text,
                        "slimlm_request_success_total{model_name=\"stories\","
                        "finished_reason=\"length\"}"),
            16);
  EXPECT_EQ(MetricValue(text,
                        "slimlm_request_success_total{model_name=\"stories\","
                        "finished_reason=\"stop\"}"),
            0);
  EXPECT_EQ(value("slimlm_time_to_first_token_seconds_count"), 16);
  EXPECT_EQ(value("slimlm_inter_token_latency_seconds_count"), 16 * 11);
  EXPECT_EQ(value("slimlm_e2e_request_latency_seconds_count"), 16);
  EXPECT_EQ(value("slimlm_request_generation_tokens_sum"), 16 * 12);
  EXPECT_EQ(value("slimlm_num_requests_running"), 0);
  EXPECT_EQ(value("slimlm_kv_cache_usage_ratio"), 0);
  // Prompt tokens: each request's prompt was either prefilled or found in the prefix cache.
  const double prompt =
      static_cast<double>(model_->tokenizer()->Encode(o.prompt, true, true).size());
  EXPECT_EQ(value("slimlm_prefix_cache_queries_total"), 16 * prompt);
  EXPECT_EQ(value("slimlm_prompt_tokens_total") + value("slimlm_prefix_cache_hits_total"),
            16 * prompt);
  // Times: the server's share of what clients waited (HTTP and parsing add the rest).
  double client_e2e = 0, client_ttft = 0;
  for (const RequestTiming& r : report->requests) {
    client_e2e += r.e2e;
    client_ttft += r.ttft;
  }
  const double server_e2e = value("slimlm_e2e_request_latency_seconds_sum");
  EXPECT_LE(server_e2e, client_e2e);
  EXPECT_GE(server_e2e, 0.8 * client_e2e);
  EXPECT_LE(value("slimlm_time_to_first_token_seconds_sum"), client_ttft);
  EXPECT_GT(value("slimlm_memory_bandwidth_bytes_per_second"), 0);
  EXPECT_GT(value("slimlm_model_weight_bytes"), 1e6);
  EXPECT_GT(value("slimlm_kv_cache_bytes"), 0);
  EXPECT_GT(MetricValue(text, "process_resident_memory_bytes"), 1e6);

  // Prometheus's own parser accepts the whole exposition.
  const std::string promtool = testing::FindProgram("promtool");
  ASSERT_FALSE(promtool.empty()) << "promtool is missing: scripts/install-deps installs prometheus";
  const std::string path = testing::MakeTempDir() + "/metrics.txt";
  std::ofstream(path) << text;
  const testing::ProcessResult check =
      testing::RunProcess({"/bin/sh", "-c", promtool + " check metrics < " + path}, 60);
  EXPECT_EQ(check.exit_code, 0) << check.out << check.err;
}

}  // namespace
}  // namespace slimlm::serve
