// OpenTelemetry export against a collector stub on loopback: one span per request with the
// GenAI attributes and the right values; a slow or dead collector never slows a request.
#include "slimlm/serve/otlp_exporter.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>
#include <nlohmann/json.hpp>

#include "support/server_process.h"
#include "support/test_data.h"

namespace slimlm::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

// Receives OTLP/HTTP JSON posts; keeps every span; may answer slowly.
class CollectorStub {
 public:
  explicit CollectorStub(std::chrono::milliseconds delay = 0ms) {
    server_.Post("/v1/traces", [this, delay](const httplib::Request& req, httplib::Response& res) {
      std::this_thread::sleep_for(delay);
      const json body = json::parse(req.body, nullptr, false);
      std::lock_guard lock(mu_);
      if (!body.is_discarded()) {
        for (const json& rs : body["resourceSpans"]) {
          for (const json& ss : rs["scopeSpans"]) {
            for (const json& span : ss["spans"]) {
              spans_.push_back(span);
              resources_.push_back(rs["resource"]);
            }
          }
        }
      }
      res.set_content("{}", "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~CollectorStub() {
    server_.stop();
    thread_.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<json> WaitForSpans(size_t n) {
    for (int i = 0; i < 100; ++i) {
      {
        std::lock_guard lock(mu_);
        if (spans_.size() >= n) return spans_;
      }
      std::this_thread::sleep_for(100ms);
    }
    std::lock_guard lock(mu_);
    return spans_;
  }
  json resource(size_t i) {
    std::lock_guard lock(mu_);
    return resources_.at(i);
  }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<json> spans_, resources_;
};

// The attributes of a span as key -> OTLP value object.
std::map<std::string, json> Attributes(const json& span) {
  std::map<std::string, json> out;
  for (const json& a : span["attributes"]) out[a["key"]] = a["value"];
  return out;
}

// POSTs a completion; its status and how long it took.
std::pair<int, double> Complete(int port, const json& body, const std::string& path) {
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(30, 0);
  const auto t0 = std::chrono::steady_clock::now();
  httplib::Result res = client.Post(path.c_str(), body.dump(), "application/json");
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return {res ? res->status : 0, seconds};
}

TEST(OtlpExporterTest, OneSpanPerRequestWithGenAiAttributes) {
  CollectorStub collector;
  testing::ServerProcess server(testing::DefaultModelPath(), {"-t", "1", "--model-name", "tales",
                                                              "--otlp-endpoint", collector.url()});
  ASSERT_TRUE(server.ok()) << server.err();
  EXPECT_EQ(Complete(server.port(),
                     {{"prompt", "Once upon a time"},
                      {"max_tokens", 9},
                      {"temperature", 0.5},
                      {"top_p", 0.9},
                      {"ignore_eos", true}},
                     "/v1/completions")
                .first,
            200);
  EXPECT_EQ(Complete(server.port(),
                     {{"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})},
                      {"max_tokens", 5},
                      {"ignore_eos", true}},
                     "/v1/chat/completions")
                .first,
            200);
  const std::vector<json> spans = collector.WaitForSpans(2);
  ASSERT_EQ(spans.size(), 2u);
  const json resource_attrs = collector.resource(0)["attributes"];
  EXPECT_EQ(resource_attrs[0]["key"], "service.name");
  EXPECT_EQ(resource_attrs[0]["value"]["stringValue"], "slimlm");

  std::map<std::string, json> a = Attributes(spans[0]);
  EXPECT_EQ(spans[0]["name"], "text_completion tales");
  EXPECT_EQ(spans[0]["kind"], 2);
  EXPECT_EQ(spans[0]["traceId"].get<std::string>().size(), 32u);
  EXPECT_EQ(spans[0]["spanId"].get<std::string>().size(), 16u);
  EXPECT_LT(std::stoll(spans[0]["startTimeUnixNano"].get<std::string>()),
            std::stoll(spans[0]["endTimeUnixNano"].get<std::string>()));
  EXPECT_EQ(a["gen_ai.operation.name"]["stringValue"], "text_completion");
  EXPECT_EQ(a["gen_ai.request.model"]["stringValue"], "tales");
  EXPECT_EQ(a["gen_ai.request.max_tokens"]["intValue"], "9");
  EXPECT_EQ(a["gen_ai.request.temperature"]["doubleValue"], 0.5);
  EXPECT_NEAR(a["gen_ai.request.top_p"]["doubleValue"].get<double>(), 0.9, 1e-6);
  EXPECT_EQ(a["gen_ai.usage.input_tokens"]["intValue"], "5");
  EXPECT_EQ(a["gen_ai.usage.output_tokens"]["intValue"], "9");
  EXPECT_EQ(a["gen_ai.response.finish_reasons"]["arrayValue"]["values"][0]["stringValue"],
            "length");
  EXPECT_TRUE(a["gen_ai.response.id"]["stringValue"].get<std::string>().starts_with("cmpl-"));

  a = Attributes(spans[1]);
  EXPECT_EQ(spans[1]["name"], "chat tales");
  EXPECT_EQ(a["gen_ai.operation.name"]["stringValue"], "chat");
  EXPECT_EQ(a["gen_ai.usage.output_tokens"]["intValue"], "5");
}

TEST(OtlpExporterTest, ASlowOrDeadCollectorNeverSlowsRequests) {
  CollectorStub slow(3000ms);
  // A port with no listener: connections are refused.
  const int sock = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  ::bind(sock, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::getsockname(sock, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(sock);
  const std::string dead = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  for (const std::string& endpoint : {slow.url(), dead}) {
    testing::ServerProcess server(testing::DefaultModelPath(),
                                  {"-t", "1", "--otlp-endpoint", endpoint});
    ASSERT_TRUE(server.ok()) << server.err();
    for (int i = 0; i < 5; ++i) {
      const auto [status, seconds] = Complete(
          server.port(), {{"prompt", "Once upon a time"}, {"max_tokens", 8}}, "/v1/completions");
      EXPECT_EQ(status, 200) << endpoint;
      // Generation takes tens of milliseconds; the collector's 3 s (or refusal) is not in it.
      EXPECT_LT(seconds, 1.5) << endpoint << " request " << i;
      std::this_thread::sleep_for(300ms);  // Let the exporter try to send meanwhile.
    }
  }
}

TEST(OtlpExporterTest, BadEndpointIsRefused) {
  EXPECT_FALSE(OtlpExporter::Start("collector:4318", "slimlm").ok());
  EXPECT_FALSE(OtlpExporter::Start("ftp://x", "slimlm").ok());
  auto ok = OtlpExporter::Start("http://127.0.0.1:4318/", "slimlm");
  EXPECT_TRUE(ok.ok());
}

}  // namespace
}  // namespace slimlm::serve
