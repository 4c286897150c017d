// Checks for programmer errors. SLIMLM_CHECK is always on; SLIMLM_DCHECK only in debug builds.
// Never use them on user or file input: those errors travel as Status (see status.h).
//
//   SLIMLM_CHECK(n > 0) << "n was " << n;
#ifndef SLIMLM_CORE_CHECK_H_
#define SLIMLM_CORE_CHECK_H_

#include <sstream>

namespace slimlm::internal {

// Collects a message and aborts the process in its destructor.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `SLIMLM_CHECK(c) << ...` be a void expression in both branches of the ternary.
struct Voidify {
  void operator&(std::ostream&) {}
};

}  // namespace slimlm::internal

#define SLIMLM_CHECK(condition)                 \
  (condition) ? (void)0                         \
              : ::slimlm::internal::Voidify() & \
                    ::slimlm::internal::CheckFailure(__FILE__, __LINE__, #condition).stream()

#ifdef NDEBUG
#define SLIMLM_DCHECK(condition) \
  while (false) SLIMLM_CHECK(condition)
#else
#define SLIMLM_DCHECK(condition) SLIMLM_CHECK(condition)
#endif

#endif  // SLIMLM_CORE_CHECK_H_
