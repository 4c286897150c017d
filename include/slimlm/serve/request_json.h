// The generation fields of a JSON request, shared by `slimlm batch` lines and the HTTP API.
#ifndef SLIMLM_SERVE_REQUEST_JSON_H_
#define SLIMLM_SERVE_REQUEST_JSON_H_

#include <string>

#include <nlohmann/json.hpp>

#include "slimlm/core/status.h"
#include "slimlm/serve/scheduler.h"

namespace slimlm::serve {

// Reads the fields present in `j` over what `r` holds: "max_tokens" (or OpenAI's
// "max_completion_tokens"), "temperature", "top_k", "top_p", "min_p", "repeat_penalty", "seed",
// "ignore_eos" (generate max_tokens whatever the model says), "stop" (a string or an array of
// strings). Integer fields take integers within their type's range (a conversion never wraps or
// truncates); a null field is as if absent. On error, `param` (when set) names the field.
Status ReadGenerationFields(const nlohmann::json& j, Request* r, std::string* param = nullptr);

}  // namespace slimlm::serve

#endif  // SLIMLM_SERVE_REQUEST_JSON_H_
