// The OpenAI-compatible request and response bodies, apart from HTTP: parsing a completion or
// chat request into a scheduler Request, and the JSON of answers, stream chunks and errors.
// See docs/serving.md for the fields taken and refused.
#ifndef SLIMLM_SERVE_OPENAI_API_H_
#define SLIMLM_SERVE_OPENAI_API_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "slimlm/model/model.h"
#include "slimlm/serve/chat_template.h"
#include "slimlm/serve/scheduler.h"

namespace slimlm::serve {

// An error answer: HTTP status and OpenAI's {"error": {message, type, param, code}}.
struct ApiError {
  int status = 400;
  std::string message;
  std::string type = "invalid_request_error";
  std::string param;  // "" is written as null.
  std::string code;   // "" is written as null.
};
nlohmann::json ErrorJson(const ApiError& e);
// JSON text that survives any bytes: invalid UTF-8 is replaced, never thrown on.
std::string Dump(const nlohmann::json& j);

// What the API needs to know about the served model.
struct ApiModel {
  const Model* model = nullptr;
  std::string name;  // The id in /v1/models and in answers; requests may name it or omit it.
  ChatTemplate chat_template = ChatTemplate::kChatMl;
  int64_t context = 0;                 // Positions one request may use.
  int64_t max_prompt_tokens = 0;       // Longest prompt accepted.
  int64_t max_tokens = 0;              // Largest max_tokens accepted.
  double request_timeout_seconds = 0;  // Given to every request; 0: none.
};

enum class ApiKind { kCompletion, kChat };

struct ApiCall {
  ApiKind kind = ApiKind::kCompletion;
  Request request;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// Parses a /v1/completions or /v1/chat/completions body. false with `error` set for malformed
// JSON, wrong types, an unknown model, an empty or too long prompt, out-of-range numbers, or
// options not supported (n > 1, logprobs, tools...).
bool ParseApiCall(std::string_view body, ApiKind kind, const ApiModel& m, ApiCall* call,
                  ApiError* error);

// The prompt of a /tokenize body ({"prompt"} or {"content"} text, or chat {"messages"}) as
// token ids; false with `error` set otherwise.
bool ParseTokenize(std::string_view body, const ApiModel& m, std::vector<int32_t>* tokens,
                   ApiError* error);
// The text of a /detokenize body ({"tokens": [ids]}); false with `error` set otherwise.
bool ParseDetokenize(std::string_view body, const ApiModel& m, std::string* text, ApiError* error);

// "stop", "length", "timeout" ("cancelled" is never answered: its client is gone or the server
// is stopping).
std::string_view ApiFinishReason(FinishReason reason);

// A whole answer (stream false).
nlohmann::json ApiAnswer(const ApiCall& call, const ApiModel& m, std::string_view id,
                         int64_t created, std::string_view text, const Event& last);
// One stream chunk: `text` and, on the last, the finish reason. The first chat chunk also says
// the role.
nlohmann::json ApiChunk(const ApiCall& call, const ApiModel& m, std::string_view id,
                        int64_t created, std::string_view text, bool first, FinishReason finish);
// The chunk with the usage after the last one (stream_options.include_usage).
nlohmann::json ApiUsageChunk(const ApiCall& call, const ApiModel& m, std::string_view id,
                             int64_t created, const Event& last);
nlohmann::json ModelsJson(const ApiModel& m, int64_t created);

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_OPENAI_API_H_
