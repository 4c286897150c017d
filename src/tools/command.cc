#include "tools/command.h"

#include <fmt/core.h>

namespace slimlm::tools {

const std::vector<CommandSpec>& AllCommands() {
  static const std::vector<CommandSpec> commands = {
      RunCommand(),     InfoCommand(),           TokenizeCommand(),
      ConvertCommand(), InitCommand(),           BenchCommand(),
      HwCommand(),      QuantizeCommand(),       PruneCommand(),
      EvalCommand(),    TrainTokenizerCommand(), TrainCommand(),
      DistillCommand(), PlanCommand(),           OptimizeCommand(),
      BatchCommand(),   ServeCommand(),          TopCommand(),
  };
  return commands;
}

void PrintError(const Status& status) {
  fmt::print(stderr, "error: {}\n", status.message());
  std::fflush(stderr);
}

int ExitCodeFor(const Status& status) {
  if (status.ok()) return kExitOk;
  return status.code() == StatusCode::kInvalidArgument ? kExitUsage : kExitFailure;
}

}  // namespace slimlm::tools
