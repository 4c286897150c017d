// Status and Result<T>: how errors that a user can cause travel across module boundaries.
//
// A Status is either OK or carries a code and a one-line message of the form "<what>: <why>",
// for example "model.gguf: truncated: tensor 'output.weight' ends at byte 9000, file has 4096".
// The command line prints it as "error: <message>". Status is cheap to copy when OK.
#ifndef SLIMLM_CORE_STATUS_H_
#define SLIMLM_CORE_STATUS_H_

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

#include <fmt/core.h>

#include "slimlm/core/check.h"

namespace slimlm {

enum class StatusCode {
  kOk = 0,
  kInvalidArgument,     // A bad flag, option value or request.
  kNotFound,            // A file, tensor, key or token that is not there.
  kIoError,             // The operating system refused a read or write.
  kCorrupt,             // A file whose bytes contradict its own format.
  kUnsupported,         // A valid input we do not handle (unknown dtype, architecture).
  kOutOfRange,          // A value past a limit (prompt longer than the context).
  kResourceExhausted,   // Out of memory, queue full.
  kFailedPrecondition,  // The call is valid but not in this state.
  kInternal,            // A bug; should never reach a user.
};

// Returns a short lower-case name such as "corrupt" for messages and logs.
std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;  // OK.
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }

  // "ok" or the message.
  std::string ToString() const { return ok() ? std::string("ok") : message_; }

  // Returns a copy whose message is "<context>: <message>"; OK stays OK.
  Status WithContext(std::string_view context) const;

  // Marks a Status as deliberately ignored.
  void IgnoreError() const {}

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

// Factories with fmt-style formatting: InvalidArgumentError("bad --temp '{}'", text).
#define SLIMLM_DEFINE_STATUS_FACTORY(Name, Code)                                       \
  template <typename... Args>                                                          \
  Status Name(fmt::format_string<Args...> format, Args&&... args) {                    \
    return Status(StatusCode::Code, fmt::format(format, std::forward<Args>(args)...)); \
  }
SLIMLM_DEFINE_STATUS_FACTORY(InvalidArgumentError, kInvalidArgument)
SLIMLM_DEFINE_STATUS_FACTORY(NotFoundError, kNotFound)
SLIMLM_DEFINE_STATUS_FACTORY(IoError, kIoError)
SLIMLM_DEFINE_STATUS_FACTORY(CorruptError, kCorrupt)
SLIMLM_DEFINE_STATUS_FACTORY(UnsupportedError, kUnsupported)
SLIMLM_DEFINE_STATUS_FACTORY(OutOfRangeError, kOutOfRange)
SLIMLM_DEFINE_STATUS_FACTORY(ResourceExhaustedError, kResourceExhausted)
SLIMLM_DEFINE_STATUS_FACTORY(FailedPreconditionError, kFailedPrecondition)
SLIMLM_DEFINE_STATUS_FACTORY(InternalError, kInternal)
#undef SLIMLM_DEFINE_STATUS_FACTORY

// Result<T> holds either a value or a non-OK Status.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : data_(std::move(value)) {}        // NOLINT: implicit by design.
  Result(Status status) : data_(std::move(status)) {  // NOLINT: implicit by design.
    SLIMLM_CHECK(!std::get<Status>(data_).ok()) << "Result built from an OK Status";
  }

  bool ok() const { return std::holds_alternative<T>(data_); }
  // The error; OK when a value is held.
  Status status() const { return ok() ? Status() : std::get<Status>(data_); }

  T& value() & {
    CheckOk();
    return std::get<T>(data_);
  }
  const T& value() const& {
    CheckOk();
    return std::get<T>(data_);
  }
  T&& value() && {
    CheckOk();
    return std::get<T>(std::move(data_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

 private:
  void CheckOk() const {
    SLIMLM_CHECK(ok()) << "value() on an error Result: " << std::get<Status>(data_).message();
  }
  std::variant<T, Status> data_;
};

}  // namespace slimlm

#define SLIMLM_STATUS_CONCAT_INNER(a, b) a##b
#define SLIMLM_STATUS_CONCAT(a, b) SLIMLM_STATUS_CONCAT_INNER(a, b)

// Returns from the enclosing function when `expr` (a Status) is not OK.
#define SLIMLM_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::slimlm::Status slimlm_status_ = (expr);        \
    if (!slimlm_status_.ok()) return slimlm_status_; \
  } while (0)

// SLIMLM_ASSIGN_OR_RETURN(auto x, MakeX()); declares x from a Result or returns its error.
#define SLIMLM_ASSIGN_OR_RETURN(lhs, expr) \
  SLIMLM_ASSIGN_OR_RETURN_IMPL(SLIMLM_STATUS_CONCAT(slimlm_result_, __LINE__), lhs, expr)
#define SLIMLM_ASSIGN_OR_RETURN_IMPL(result, lhs, expr) \
  auto result = (expr);                                 \
  if (!result.ok()) return result.status();             \
  lhs = std::move(result).value()

#endif  // SLIMLM_CORE_STATUS_H_
