// The command line's plumbing: each command is a CommandSpec in its own file; main.cc builds
// the parser from AllCommands().
//
// Exit codes (DESIGN.md §1): 0 success, 1 runtime failure, 2 bad usage. Errors are printed as
// one line, "error: <what>: <why>".
#ifndef SLIMLM_TOOLS_COMMAND_H_
#define SLIMLM_TOOLS_COMMAND_H_

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <CLI/CLI.hpp>

#include "slimlm/core/status.h"

namespace slimlm::tools {

inline constexpr int kExitOk = 0;
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;

// The version `slimlm --version` prints, also written into benchmark records.
inline constexpr std::string_view kSlimlmVersion = "0.1.0";

struct CommandSpec {
  std::string name;
  std::string summary;  // One line for `slimlm help`.
  // Declares the command's options on `app` (bound to variables the action captures) and returns
  // the action, which runs after a successful parse and returns a Status.
  std::function<std::function<Status()>(CLI::App* app)> setup;
};

// Every command, in the order `slimlm help` lists them.
const std::vector<CommandSpec>& AllCommands();

CommandSpec RunCommand();
CommandSpec InfoCommand();
CommandSpec TokenizeCommand();
CommandSpec ConvertCommand();
CommandSpec InitCommand();
CommandSpec HwCommand();
CommandSpec BenchCommand();
CommandSpec EvalCommand();
CommandSpec QuantizeCommand();
CommandSpec PruneCommand();
CommandSpec TrainTokenizerCommand();
CommandSpec TrainCommand();
CommandSpec DistillCommand();
CommandSpec PlanCommand();
CommandSpec OptimizeCommand();
CommandSpec BatchCommand();
CommandSpec ServeCommand();
CommandSpec TopCommand();

// Prints "error: <message>" to stderr.
void PrintError(const Status& status);

// Exit code for a failed Status: kExitUsage for kInvalidArgument, else kExitFailure.
int ExitCodeFor(const Status& status);

}  // namespace slimlm::tools

#endif  // SLIMLM_TOOLS_COMMAND_H_
