// Runs a program (usually the slimlm binary) and captures its exit code and output.
#ifndef SLIMLM_TESTS_SUPPORT_SUBPROCESS_H_
#define SLIMLM_TESTS_SUPPORT_SUBPROCESS_H_

#include <string>
#include <vector>

namespace slimlm::testing {

struct ProcessResult {
  int exit_code = -1;  // -1 when it did not exit normally (killed by a signal).
  int signal = 0;
  std::string out;
  std::string err;
};

// Runs argv[0] with the arguments, stdin from /dev/null, waiting at most timeout_seconds
// (then killed with SIGKILL).
ProcessResult RunProcess(const std::vector<std::string>& argv, double timeout_seconds = 120);

// Runs the slimlm binary and sends it `signal` after `delay_seconds` if it is still running.
ProcessResult RunSlimlmAndSignal(const std::vector<std::string>& args, double delay_seconds,
                                 int signal);

// The whole content of a file ("" when it cannot be read): a child's captured output.
std::string ReadWholeFile(const std::string& path);

// RunProcess with the slimlm binary as argv[0].
ProcessResult RunSlimlm(const std::vector<std::string>& args, double timeout_seconds = 120);

}  // namespace slimlm::testing

#endif  // SLIMLM_TESTS_SUPPORT_SUBPROCESS_H_
