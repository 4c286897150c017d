#include "slimlm/serve/openai_api.h"

#include <random>

#include <fmt/core.h>

#include "slimlm/serve/request_json.h"

namespace slimlm::serve {
namespace {

using nlohmann::json;

ApiError Invalid(std::string message, std::string param = "") {
  ApiError e;
  e.message = std::move(message);
  e.param = std::move(param);
  return e;
}

// The body as a JSON object, or why not. nlohmann's messages start with an exception tag the
// client has no use for.
bool ParseObject(std::string_view body, json* j, ApiError* error) {
  try {
    *j = json::parse(body);
  } catch (const json::exception& e) {
    std::string what = e.what();
    if (const size_t tag = what.find("] "); tag != std::string::npos) what = what.substr(tag + 2);
    *error = Invalid("the body is not valid JSON: " + what);
    return false;
  }
  if (!j->is_object()) {
    *error = Invalid("the body must be a JSON object");
    return false;
  }
  return true;
}

bool Given(const json& j, const char* key) { return j.contains(key) && !j[key].is_null(); }

// Options we do not implement: refused by name rather than silently ignored.
bool RefuseUnsupported(const json& j, ApiKind kind, ApiError* error) {
  auto refuse = [&](const char* key, const char* what) {
    *error = Invalid(fmt::format("\"{}\" {} is not supported", key, what), key);
    return false;
  };
  if (Given(j, "n") && !(j["n"].is_number_integer() && j["n"].get<int64_t>() == 1)) {
    return refuse("n", "other than 1");
  }
  if (Given(j, "best_of") && !(j["best_of"].is_number_integer() && j["best_of"] == 1)) {
    return refuse("best_of", "other than 1");
  }
  if (Given(j, "logprobs") && j["logprobs"] != false &&
      !(kind == ApiKind::kCompletion && j["logprobs"] == 0)) {
    return refuse("logprobs", "(log-probabilities)");
  }
  if (Given(j, "echo") && j["echo"] != false) return refuse("echo", "(echoing the prompt)");
  if (Given(j, "suffix") && j["suffix"] != "") return refuse("suffix", "(insertion)");
  if (Given(j, "logit_bias") && !j["logit_bias"].empty()) return refuse("logit_bias", "");
  if (Given(j, "tools") && !j["tools"].empty()) return refuse("tools", "(tool calls)");
  if (Given(j, "functions") && !j["functions"].empty()) return refuse("functions", "");
  for (const char* key : {"frequency_penalty", "presence_penalty"}) {
    if (Given(j, key) && !(j[key].is_number() && j[key].get<double>() == 0)) {
      return refuse(key, "other than 0 (use \"repeat_penalty\")");
    }
  }
  if (Given(j, "response_format")) {
    const json& f = j["response_format"];
    if (!(f.is_object() && f.value("type", "text") == "text")) {
      return refuse("response_format", "other than text");
    }
  }
  return true;
}

// Chat messages: {"role", "content"} with content a string, text parts, or null.
bool ParseMessages(const json& j, std::vector<ChatMessage>* messages, ApiError* error) {
  if (!j.contains("messages") || !j["messages"].is_array()) {
    *error = Invalid("\"messages\" must be an array of messages", "messages");
    return false;
  }
  for (const json& m : j["messages"]) {
    if (!m.is_object() || !m.contains("role") || !m["role"].is_string()) {
      *error = Invalid("each message must be an object with a string \"role\"", "messages");
      return false;
    }
    ChatMessage out{m["role"].get<std::string>(), ""};
    const json content = m.value("content", json());
    if (content.is_string()) {
      out.content = content.get<std::string>();
    } else if (content.is_array()) {
      for (const json& part : content) {
        if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") ||
            !part["text"].is_string()) {
          *error = Invalid("message content parts must be {\"type\": \"text\", \"text\": ...}",
                           "messages");
          return false;
        }
        out.content += part["text"].get<std::string>();
      }
    } else if (!content.is_null()) {
      *error =
          Invalid("message \"content\" must be a string or an array of text parts", "messages");
      return false;
    }
    messages->push_back(std::move(out));
  }
  return true;
}

// A completion prompt: text, token ids, or a list holding one of those.
bool ParsePrompt(const json& j, const ApiModel& m, std::vector<int32_t>* tokens, ApiError* error) {
  if (!j.contains("prompt")) {
    *error = Invalid("\"prompt\" is required", "prompt");
    return false;
  }
  json prompt = j["prompt"];
  if (prompt.is_array() && prompt.size() == 1 && !prompt[0].is_number()) prompt = prompt[0];
  if (prompt.is_string()) {
    const std::string text = prompt.get<std::string>();
    if (text.empty()) {
      *error = Invalid("\"prompt\" is empty", "prompt");
      return false;
    }
    *tokens = m.model->tokenizer()->Encode(text, true, /*parse_special=*/true);
    return true;
  }
  if (prompt.is_array() && !prompt.empty() && prompt[0].is_number()) {
    for (const json& t : prompt) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
          t.get<int64_t>() >= m.model->config().n_vocab) {
        *error = Invalid(fmt::format("\"prompt\" token ids must be integers in [0, {})",
                                     m.model->config().n_vocab),
                         "prompt");
        return false;
      }
      tokens->push_back(t.get<int32_t>());
    }
    return true;
  }
  *error = Invalid(
      prompt.is_array() && prompt.size() > 1
          ? "one prompt per request: \"prompt\" lists several"
          : "\"prompt\" must be a non-empty string, an array of token ids, or a list of one",
      "prompt");
  return false;
}

bool CheckPromptLength(size_t n, const ApiModel& m, ApiError* error) {
  if (n == 0) {
    *error = Invalid("the prompt is empty", "prompt");
    return false;
  }
  const int64_t limit = std::min(m.max_prompt_tokens, m.context - 1);
  if (static_cast<int64_t>(n) > limit) {
    *error = Invalid(
        fmt::format("the prompt has {} tokens; this server takes at most {}", n, limit), "prompt");
    error->code = "context_length_exceeded";
    return false;
  }
  return true;
}

json Usage(const Event& last) {
  return {{"prompt_tokens", last.prompt_tokens},
          {"completion_tokens", last.completion_tokens},
          {"total_tokens", last.prompt_tokens + last.completion_tokens},
          {"prompt_tokens_details", {{"cached_tokens", last.cached_tokens}}}};
}

json Header(const ApiCall& call, const ApiModel& m, std::string_view id, int64_t created,
            bool chunk) {
  const char* object = call.kind == ApiKind::kChat
                           ? (chunk ? "chat.completion.chunk" : "chat.completion")
                           : "text_completion";
  return {{"id", id}, {"object", object}, {"created", created}, {"model", m.name}};
}

json Reason(FinishReason r) { return r == FinishReason::kNone ? json() : json(ApiFinishReason(r)); }

}  // namespace

json ErrorJson(const ApiError& e) {
  return {{"error",
           {{"message", e.message},
            {"type", e.type},
            {"param", e.param.empty() ? json() : json(e.param)},
            {"code", e.code.empty() ? json() : json(e.code)}}}};
}

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

bool ParseApiCall(std::string_view body, ApiKind kind, const ApiModel& m, ApiCall* call,
                  ApiError* error) {
  json j;
  if (!ParseObject(body, &j, error)) return false;
  if (Given(j, "model")) {
    if (!j["model"].is_string()) {
      *error = Invalid("\"model\" must be a string", "model");
      return false;
    }
    if (j["model"] != m.name) {
      *error = Invalid(fmt::format("the model \"{}\" does not exist; this server has \"{}\"",
                                   j["model"].get<std::string>(), m.name),
                       "model");
      error->status = 404;
      error->code = "model_not_found";
      return false;
    }
  }
  if (!RefuseUnsupported(j, kind, error)) return false;
  call->kind = kind;
  if (Given(j, "stream")) {
    if (!j["stream"].is_boolean()) {
      *error = Invalid("\"stream\" must be true or false", "stream");
      return false;
    }
    call->stream = j["stream"].get<bool>();
  }
  if (Given(j, "stream_options")) {
    const json& o = j["stream_options"];
    if (!o.is_object() || (o.contains("include_usage") && !o["include_usage"].is_boolean())) {
      *error =
          Invalid("\"stream_options\" must be {\"include_usage\": true|false}", "stream_options");
      return false;
    }
    call->include_usage = o.value("include_usage", false);
  }
  Request& r = call->request;
  if (kind == ApiKind::kChat) {
    std::vector<ChatMessage> messages;
    if (!ParseMessages(j, &messages, error)) return false;
    Result<std::string> text = ApplyChatTemplate(m.chat_template, messages);
    if (!text.ok()) {
      *error = Invalid(text.status().message(), "messages");
      return false;
    }
    r.prompt = m.model->tokenizer()->Encode(*text, true, /*parse_special=*/true);
    r.stop = ChatTemplateStops(m.chat_template);
  } else if (!ParsePrompt(j, m, &r.prompt, error)) {
    return false;
  }
  if (!CheckPromptLength(r.prompt.size(), m, error)) return false;
  // OpenAI's defaults: plain sampling at temperature 1; 16 tokens for a completion, the rest of
  // the context for a chat.
  r.sampling.temperature = 1.0f;
  r.sampling.top_k = 0;
  r.sampling.top_p = 1.0f;
  r.sampling.min_p = 0.0f;
  r.sampling.seed = std::random_device{}();
  r.max_tokens = kind == ApiKind::kChat ? m.context - static_cast<int64_t>(r.prompt.size()) : 16;
  r.max_tokens = std::min(r.max_tokens, m.max_tokens);
  r.timeout_seconds = m.request_timeout_seconds;
  const size_t template_stops = r.stop.size();
  std::string param;
  if (Status s = ReadGenerationFields(j, &r, &param); !s.ok()) {
    *error = Invalid(std::string(s.message()), param);
    return false;
  }
  if (r.max_tokens < 1 || r.max_tokens > m.max_tokens) {
    *error = Invalid(
        fmt::format("\"max_tokens\" must be between 1 and {}, got {}", m.max_tokens, r.max_tokens),
        "max_tokens");
    return false;
  }
  if (r.stop.size() - template_stops > 16) {
    *error = Invalid("\"stop\" takes at most 16 strings", "stop");
    return false;
  }
  if (Status s = r.sampling.Validate(); !s.ok()) {
    *error = Invalid(std::string(s.message()));
    return false;
  }
  return true;
}

bool ParseTokenize(std::string_view body, const ApiModel& m, std::vector<int32_t>* tokens,
                   ApiError* error) {
  json j;
  if (!ParseObject(body, &j, error)) return false;
  bool add_special = true;
  if (Given(j, "add_special_tokens")) {
    if (!j["add_special_tokens"].is_boolean()) {
      *error = Invalid("\"add_special_tokens\" must be true or false", "add_special_tokens");
      return false;
    }
    add_special = j["add_special_tokens"].get<bool>();
  }
  std::string text;
  if (j.contains("messages")) {
    std::vector<ChatMessage> messages;
    if (!ParseMessages(j, &messages, error)) return false;
    Result<std::string> applied = ApplyChatTemplate(m.chat_template, messages);
    if (!applied.ok()) {
      *error = Invalid(applied.status().message(), "messages");
      return false;
    }
    text = *applied;
  } else {
    const char* key = j.contains("content") ? "content" : "prompt";
    if (!j.contains(key) || !j[key].is_string()) {
      *error = Invalid("\"prompt\" must be a string (or give chat \"messages\")", "prompt");
      return false;
    }
    text = j[key].get<std::string>();
  }
  *tokens = m.model->tokenizer()->Encode(text, add_special, /*parse_special=*/true);
  return true;
}

bool ParseDetokenize(std::string_view body, const ApiModel& m, std::string* text, ApiError* error) {
  json j;
  if (!ParseObject(body, &j, error)) return false;
  if (!j.contains("tokens") || !j["tokens"].is_array()) {
    *error = Invalid("\"tokens\" must be an array of token ids", "tokens");
    return false;
  }
  std::vector<int32_t> ids;
  for (const json& t : j["tokens"]) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
        t.get<int64_t>() >= m.model->config().n_vocab) {
      *error = Invalid(
          fmt::format("\"tokens\" must hold integers in [0, {})", m.model->config().n_vocab),
          "tokens");
      return false;
    }
    ids.push_back(t.get<int32_t>());
  }
  *text = m.model->tokenizer()->Decode(ids);
  return true;
}

std::string_view ApiFinishReason(FinishReason reason) { return FinishReasonName(reason); }

json ApiAnswer(const ApiCall& call, const ApiModel& m, std::string_view id, int64_t created,
               std::string_view text, const Event& last) {
  json j = Header(call, m, id, created, false);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", Reason(last.finish)}};
  if (call.kind == ApiKind::kChat) {
    choice["message"] = {{"role", "assistant"}, {"content", text}};
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  j["usage"] = Usage(last);
  return j;
}

json ApiChunk(const ApiCall& call, const ApiModel& m, std::string_view id, int64_t created,
              std::string_view text, bool first, FinishReason finish) {
  json j = Header(call, m, id, created, true);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", Reason(finish)}};
  if (call.kind == ApiKind::kChat) {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    if (!text.empty() || finish == FinishReason::kNone) delta["content"] = text;
    choice["delta"] = delta;
  } else {
    choice["text"] = text;
  }
  j["choices"] = json::array({choice});
  if (call.include_usage) j["usage"] = nullptr;
  return j;
}

json ApiUsageChunk(const ApiCall& call, const ApiModel& m, std::string_view id, int64_t created,
                   const Event& last) {
  json j = Header(call, m, id, created, true);
  j["choices"] = json::array();
  j["usage"] = Usage(last);
  return j;
}

json ModelsJson(const ApiModel& m, int64_t created) {
  return {{"object", "list"},
          {"data", json::array({{{"id", m.name},
                                 {"object", "model"},
                                 {"created", created},
                                 {"owned_by", "slimlm"},
                                 {"max_model_len", m.context}}})}};
}

}  // namespace slimlm::serve
