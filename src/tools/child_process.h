// Runs this slimlm binary as a child process (optimize measures every candidate in a fresh
// process, so that its peak memory is its own).
#ifndef SLIMLM_TOOLS_CHILD_PROCESS_H_
#define SLIMLM_TOOLS_CHILD_PROCESS_H_

#include <string>
#include <vector>

#include "slimlm/core/status.h"

namespace slimlm::tools {

// Runs `slimlm args...` (the binary of this process) and returns its standard output. Its
// standard error is appended to `log_path`. A non-zero exit is an error carrying the last line
// the child wrote to its standard error.
Result<std::string> RunSlimlmChild(const std::vector<std::string>& args,
                                   const std::string& log_path);

}  // namespace slimlm::tools

#endif  // SLIMLM_TOOLS_CHILD_PROCESS_H_
