// slimlm: measure, compress, evaluate, serve and monitor LLMs on ordinary hardware.
#include <cstdio>
#include <exception>
#include <string>

#include <fmt/core.h>

#include "slimlm/core/log.h"
#include "tools/command.h"

namespace slimlm::tools {
namespace {

std::string Overview() {
  std::string text = "usage: slimlm <command> [options]\n\ncommands:\n";
  for (const CommandSpec& c : AllCommands())
    text += fmt::format("  {:<16} {}\n", c.name, c.summary);
  text += "\n'slimlm help <command>' explains a command and its options.\n";
  return text;
}

int Main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "{}", Overview());
    return kExitUsage;
  }
  std::string first = argv[1];
  if (first == "--version" || first == "version") {
    fmt::print("slimlm {}\n", kSlimlmVersion);
    return kExitOk;
  }
  if (first == "help" || first == "--help" || first == "-h") {
    if (argc < 3) {
      fmt::print("{}", Overview());
      return kExitOk;
    }
    // "slimlm help run" parses as "slimlm run --help".
    first = argv[2];
    argv[1] = argv[2];
    argv[2] = const_cast<char*>("--help");
  }
  const CommandSpec* spec = nullptr;
  for (const CommandSpec& c : AllCommands()) {
    if (c.name == first) spec = &c;
  }
  if (spec == nullptr) {
    fmt::print(stderr, "error: unknown command '{}'\n\n{}", first, Overview());
    return kExitUsage;
  }
  CLI::App app(spec->summary, "slimlm " + spec->name);
  app.set_help_flag("-h,--help", "Show this help and exit");
  std::string log_level;
  app.add_option("--log-level", log_level, "Log detail: debug, info, warning, error, off");
  std::function<Status()> action = spec->setup(&app);
  try {
    app.parse(argc - 1, argv + 1);
  } catch (const CLI::CallForHelp&) {
    fmt::print("{}", app.help());
    return kExitOk;
  } catch (const CLI::ParseError& e) {
    fmt::print(stderr, "error: {}\nrun 'slimlm help {}' for the options\n", e.what(), spec->name);
    return kExitUsage;
  }
  if (!log_level.empty()) {
    LogLevel level;
    if (!ParseLogLevel(log_level, &level)) {
      PrintError(
          InvalidArgumentError("--log-level '{}' is not one of debug, info, warning, "
                               "error, off",
                               log_level));
      return kExitUsage;
    }
    SetLogLevel(level);
  }
  Status status = action();
  if (!status.ok()) {
    PrintError(status);
    return ExitCodeFor(status);
  }
  return kExitOk;
}

}  // namespace
}  // namespace slimlm::tools

int main(int argc, char** argv) {
  try {
    return slimlm::tools::Main(argc, argv);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "error: out of memory\n");
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: internal: %s\n", e.what());
  }
  return slimlm::tools::kExitFailure;
}
