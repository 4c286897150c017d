// slimlm serve as a process, with real clients: curl (completions, streamed chat, errors, the
// API key), the official `openai` npm client (installed once into the build folder), SIGTERM
// (requests in flight finish, then the process exits 0), and bad flags.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "support/cli_errors.h"
#include "support/server_process.h"
#include "support/subprocess.h"
#include "support/test_data.h"

namespace slimlm {
namespace {

using nlohmann::json;
using testing::ExpectOneLineError;
using ::testing::HasSubstr;
using testing::RunProcess;
using testing::RunSlimlm;
using testing::ServerProcess;

struct CurlAnswer {
  int status = 0;
  std::string body;
};

// curl -sS, the HTTP status written after the body.
CurlAnswer Curl(const std::string& url, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {testing::FindProgram("curl"), "-sS", "-w", "\n%{http_code}"};
  argv.insert(argv.end(), args.begin(), args.end());
  argv.push_back(url);
  const testing::ProcessResult r = RunProcess(argv, 120);
  CurlAnswer a;
  const size_t nl = r.out.rfind('\n');
  if (r.exit_code != 0 || nl == std::string::npos) {
    a.body = r.err;
    return a;
  }
  a.status = std::stoi(r.out.substr(nl + 1));
  a.body = r.out.substr(0, nl);
  return a;
}

CurlAnswer PostJson(const std::string& url, const std::string& body, const std::string& key = "") {
  std::vector<std::string> args = {"-N", "-H", "Content-Type: application/json", "-d", body};
  if (!key.empty()) {
    args.push_back("-H");
    args.push_back("Authorization: Bearer " + key);
  }
  return Curl(url, args);
}

class ServeCli : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_FALSE(testing::FindProgram("curl").empty())
        << "curl is missing: scripts/install-deps installs it";
  }
};

TEST_F(ServeCli, CurlGetsCompletionsStreamsAndErrors) {
  const std::string log = testing::MakeTempDir() + "/requests.jsonl";
  ServerProcess server(testing::DefaultModelPath(),
                       {"-t", "1", "--api-key", "k3y", "--max-body", "2000", "--request-log", log});
  ASSERT_TRUE(server.ok()) << server.err();
  EXPECT_THAT(server.out(), HasSubstr("API key required"));
  const std::string url = server.url();

  const CurlAnswer health = Curl(url + "/health", {});
  EXPECT_EQ(health.status, 200);
  EXPECT_EQ(json::parse(health.body)["status"], "ok");

  const std::string request =
      R"({"prompt": "Once upon a time", "max_tokens": 12, "temperature": 0})";
  const CurlAnswer no_key = PostJson(url + "/v1/completions", request);
  EXPECT_EQ(no_key.status, 401);
  EXPECT_EQ(json::parse(no_key.body)["error"]["code"], "invalid_api_key");

  const CurlAnswer done = PostJson(url + "/v1/completions", request, "k3y");
  ASSERT_EQ(done.status, 200) << done.body;
  const json j = json::parse(done.body);
  EXPECT_FALSE(j["choices"][0]["text"].get<std::string>().empty());
  EXPECT_LE(j["usage"]["completion_tokens"].get<int>(), 12);

  const CurlAnswer streamed = PostJson(
      url + "/v1/chat/completions",
      R"({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 8, "stream": true})",
      "k3y");
  ASSERT_EQ(streamed.status, 200) << streamed.body;
  EXPECT_THAT(streamed.body, ::testing::StartsWith("data: {"));
  EXPECT_THAT(streamed.body, ::testing::EndsWith("data: [DONE]\n\n"));
  EXPECT_THAT(streamed.body, HasSubstr("\"object\":\"chat.completion.chunk\""));

  const CurlAnswer malformed = PostJson(url + "/v1/completions", "{\"prompt\": ", "k3y");
  EXPECT_EQ(malformed.status, 400);
  EXPECT_THAT(json::parse(malformed.body)["error"]["message"].get<std::string>(),
              HasSubstr("not valid JSON"));
  const CurlAnswer huge =
      PostJson(url + "/v1/completions", "{\"prompt\": \"" + std::string(3000, 'a') + "\"}", "k3y");
  EXPECT_EQ(huge.status, 413);
  EXPECT_THAT(json::parse(huge.body)["error"]["message"].get<std::string>(), HasSubstr("2000"));
  // Still serving after the errors.
  EXPECT_EQ(PostJson(url + "/v1/completions", request, "k3y").status, 200);

  // The request log: one JSON line per finished request (three), none for refused ones.
  std::ifstream in(log);
  std::vector<json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(json::parse(line));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["route"], "/v1/completions");
  EXPECT_EQ(lines[0]["model"], "slimlm-stories-6m.f16");
  EXPECT_EQ(lines[0]["prompt_tokens"], j["usage"]["prompt_tokens"]);
  EXPECT_EQ(lines[0]["completion_tokens"], j["usage"]["completion_tokens"]);
  EXPECT_EQ(lines[0]["finish_reason"], j["choices"][0]["finish_reason"]);
  EXPECT_EQ(lines[0]["id"], j["id"]);
  EXPECT_EQ(lines[1]["route"], "/v1/chat/completions");
  EXPECT_EQ(lines[1]["stream"], true);
  for (const json& l : lines) {
    EXPECT_GE(l["e2e_seconds"].get<double>(), l["queue_seconds"].get<double>() +
                                                  l["prefill_seconds"].get<double>() +
                                                  l["decode_seconds"].get<double>() - 1e-3);
  }
}

TEST_F(ServeCli, OfficialOpenAiClientWorks) {
  const std::string node = testing::FindProgram("node");
  const std::string npm = testing::FindProgram("npm");
  ASSERT_FALSE(node.empty() || npm.empty()) << "node and npm are missing: scripts/install-deps";
  // Installed once per build folder, at a fixed version.
  const std::string prefix = testing::BuildDir() + "/npm";
  const std::string module = prefix + "/node_modules/openai";
  if (!std::filesystem::exists(module + "/package.json")) {
    const testing::ProcessResult install = RunProcess(
        {npm, "install", "--no-audit", "--no-fund", "--prefix", prefix, "openai@4.95.0"}, 300);
    ASSERT_EQ(install.exit_code, 0) << "npm install openai failed:\n" << install.err;
  }
  ServerProcess server(testing::DefaultModelPath(),
                       {"-t", "1", "--api-key", "sk-test", "--model-name", "stories"});
  ASSERT_TRUE(server.ok()) << server.err();
  const testing::ProcessResult r =
      RunProcess({node, testing::TestsSourceDir() + "/tools/openai_client.cjs", module,
                  server.url() + "/v1", "sk-test", "stories"},
                 120);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const json out = json::parse(r.out);
  EXPECT_EQ(out["models"], json::array({"stories"}));
  EXPECT_FALSE(out["completion"]["text"].get<std::string>().empty());
  EXPECT_EQ(out["completion"]["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(out["chat"]["role"], "assistant");
  EXPECT_TRUE(out["chat"]["finish_reason"] == "length" || out["chat"]["finish_reason"] == "stop");
  // Greedy: streamed and whole answers are the same text.
  EXPECT_EQ(out["chat_stream"]["content"], out["chat"]["content"]);
  EXPECT_EQ(out["chat_stream"]["finish_reason"], out["chat"]["finish_reason"]);
  EXPECT_EQ(out["chat_stream"]["usage"]["completion_tokens"],
            out["chat"]["usage"]["completion_tokens"]);
  EXPECT_GT(out["chat_stream"]["chunks"].get<int>(), 2);
  EXPECT_EQ(out["completion_stream"]["text"], out["completion"]["text"]);
  EXPECT_EQ(out["unknown_model"]["status"], 404);
  EXPECT_EQ(out["unknown_model"]["code"], "model_not_found");
  EXPECT_EQ(out["bad_max_tokens"]["status"], 400);
  EXPECT_EQ(out["bad_max_tokens"]["param"], "max_tokens");
  EXPECT_EQ(out["wrong_key"]["status"], 401);
  EXPECT_EQ(out["wrong_key"]["name"], "AuthenticationError");
}

TEST_F(ServeCli, SigtermLetsRequestsFinishThenExits) {
  ServerProcess server(testing::DefaultModelPath(), {"-t", "1", "--shutdown-timeout", "30"});
  ASSERT_TRUE(server.ok()) << server.err();
  const std::string url = server.url();
  CurlAnswer streamed;
  std::thread client([&] {
    streamed = PostJson(url + "/v1/completions",
                        R"({"prompt": "Once upon a time", "max_tokens": 200, "temperature": 0,
                            "ignore_eos": true, "stream": true})");
  });
  for (int i = 0; i < 500; ++i) {
    const CurlAnswer h = Curl(url + "/health", {});
    if (h.status == 200 && json::parse(h.body)["running"] == 1) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  server.Signal(SIGTERM);
  const int code = server.Wait(60);
  client.join();
  EXPECT_EQ(code, 0) << server.err();
  EXPECT_THAT(server.err(), HasSubstr("shutting down"));
  EXPECT_EQ(streamed.status, 200);
  EXPECT_THAT(streamed.body, HasSubstr("\"finish_reason\":\"length\""));
  EXPECT_THAT(streamed.body, ::testing::EndsWith("data: [DONE]\n\n"));
  // Gone: nothing listens there any more.
  EXPECT_EQ(Curl(url + "/health", {}).status, 0);
}

TEST_F(ServeCli, TopShowsALiveServer) {
  ServerProcess server(testing::DefaultModelPath(), {"-t", "1", "--model-name", "tales"});
  ASSERT_TRUE(server.ok()) << server.err();
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(PostJson(server.url() + "/v1/completions",
                       R"({"prompt": "Once upon a time", "max_tokens": 9, "ignore_eos": true})")
                  .status,
              200);
  }
  const testing::ProcessResult top =
      RunSlimlm({"top", server.url(), "--once", "--interval", "0.2"}, 60);
  ASSERT_EQ(top.exit_code, 0) << top.err;
  EXPECT_THAT(top.out, HasSubstr("model tales"));
  EXPECT_THAT(top.out, HasSubstr("finished 3 (stop 0, length 3, timeout 0, cancelled 0)"));
  EXPECT_THAT(top.out, HasSubstr("running 0"));
  EXPECT_THAT(top.out, HasSubstr("TTFT       p50"));
  EXPECT_THAT(top.out, ::testing::Not(HasSubstr("\x1b[")));  // --once: no screen control.
  // Not a server, or not slimlm's.
  ExpectOneLineError(RunSlimlm({"top", "http://127.0.0.1:1", "--once"}), "cannot reach");
  ExpectOneLineError(RunSlimlm({"top", "ftp://x", "--once"}), "ftp://x");
}

TEST_F(ServeCli, BadFlagsAndABusyPort) {
  const std::string model = testing::DefaultModelPath();
  ExpectOneLineError(RunSlimlm({"serve", model, "--chat-template", "vicuna"}), "vicuna");
  ExpectOneLineError(RunSlimlm({"serve", model, "--kv-type", "f8"}), "f8");
  ExpectOneLineError(RunSlimlm({"serve", model, "--log-format", "xml"}), "xml");
  ExpectOneLineError(RunSlimlm({"serve", model, "--otlp-endpoint", "collector:4318"}),
                     "collector:4318");
  ExpectOneLineError(RunSlimlm({"serve", model, "--request-log", "/nonexistent/dir/log"}),
                     "/nonexistent/dir/log");
  const testing::ProcessResult bad_port = RunSlimlm({"serve", model, "--port", "70000"});
  EXPECT_NE(bad_port.exit_code, 0);
  EXPECT_THAT(bad_port.err, HasSubstr("--port"));
  ExpectOneLineError(RunSlimlm({"serve", "/nonexistent/model.gguf"}), "/nonexistent/model.gguf");
  ServerProcess first(model, {"-t", "1"});
  ASSERT_TRUE(first.ok()) << first.err();
  const testing::ProcessResult second =
      RunSlimlm({"serve", model, "-t", "1", "--port", std::to_string(first.port())}, 60);
  EXPECT_NE(second.exit_code, 0);
  EXPECT_THAT(second.err, HasSubstr("cannot listen on 127.0.0.1:" + std::to_string(first.port())));
}

}  // namespace
}  // namespace slimlm
