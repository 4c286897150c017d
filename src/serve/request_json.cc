#include "slimlm/serve/request_json.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace slimlm::serve {
namespace {

template <typename T>
Status ReadNumber(const nlohmann::json& j, const char* key, T* out) {
  if (!j.contains(key) || j[key].is_null()) return Status::Ok();
  const nlohmann::json& v = j[key];
  if constexpr (std::is_integral_v<T>) {
    const bool fits = (v.is_number_unsigned() &&
                       v.get<uint64_t>() <= static_cast<uint64_t>(std::numeric_limits<T>::max())) ||
                      (v.is_number_integer() && !v.is_number_unsigned() &&
                       v.get<int64_t>() >= static_cast<int64_t>(std::numeric_limits<T>::min()) &&
                       v.get<int64_t>() <= static_cast<int64_t>(std::numeric_limits<T>::max()));
    if (!fits) return InvalidArgumentError("\"{}\" must be an integer in range", key);
  } else {
    if (!v.is_number() || !std::isfinite(v.get<double>()) ||
        std::fabs(v.get<double>()) > std::numeric_limits<float>::max()) {
      return InvalidArgumentError("\"{}\" must be a finite number", key);
    }
  }
  *out = v.get<T>();
  return Status::Ok();
}

}  // namespace

Status ReadGenerationFields(const nlohmann::json& j, Request* r, std::string* param) {
  auto fail = [&](const char* key, Status s) {
    if (param != nullptr) *param = key;
    return s;
  };
  auto number = [&](const char* key, auto* out) -> Status {
    Status s = ReadNumber(j, key, out);
    return s.ok() ? s : fail(key, std::move(s));
  };
  SLIMLM_RETURN_IF_ERROR(number("max_tokens", &r->max_tokens));
  SLIMLM_RETURN_IF_ERROR(number("max_completion_tokens", &r->max_tokens));
  SLIMLM_RETURN_IF_ERROR(number("temperature", &r->sampling.temperature));
  SLIMLM_RETURN_IF_ERROR(number("top_k", &r->sampling.top_k));
  SLIMLM_RETURN_IF_ERROR(number("top_p", &r->sampling.top_p));
  SLIMLM_RETURN_IF_ERROR(number("min_p", &r->sampling.min_p));
  SLIMLM_RETURN_IF_ERROR(number("repeat_penalty", &r->sampling.repeat_penalty));
  SLIMLM_RETURN_IF_ERROR(number("seed", &r->sampling.seed));
  if (j.contains("ignore_eos") && !j["ignore_eos"].is_null()) {
    if (!j["ignore_eos"].is_boolean()) {
      return fail("ignore_eos", InvalidArgumentError("\"ignore_eos\" must be true or false"));
    }
    r->ignore_eos = j["ignore_eos"].get<bool>();
  }
  if (j.contains("stop") && !j["stop"].is_null()) {
    const nlohmann::json& stop = j["stop"];
    if (stop.is_string()) {
      r->stop.push_back(stop.get<std::string>());
    } else if (stop.is_array()) {
      for (const auto& s : stop) {
        if (!s.is_string()) return fail("stop", InvalidArgumentError("\"stop\" must hold strings"));
        r->stop.push_back(s.get<std::string>());
      }
    } else {
      return fail("stop", InvalidArgumentError("\"stop\" must be a string or an array of strings"));
    }
    for (const std::string& s : r->stop) {
      if (s.empty()) return fail("stop", InvalidArgumentError("\"stop\" holds an empty string"));
    }
  }
  return Status::Ok();
}

}  // namespace slimlm::serve
