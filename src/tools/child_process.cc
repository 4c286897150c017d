#include "tools/child_process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <fmt/core.h>

extern char** environ;

namespace slimlm::tools {
namespace {

std::string LastLine(const std::string& path) {
  std::ifstream in(path);
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty()) last = line;
  }
  return last;
}

}  // namespace

Result<std::string> RunSlimlmChild(const std::vector<std::string>& args,
                                   const std::string& log_path) {
  int out[2];
  if (::pipe2(out, O_CLOEXEC) != 0) return IoError("pipe: {}", std::strerror(errno));
  const int log = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log < 0) {
    ::close(out[0]);
    ::close(out[1]);
    return IoError("{}: cannot open: {}", log_path, std::strerror(errno));
  }
  std::string header = "$ slimlm";
  for (const std::string& a : args) header += " " + a;
  header += "\n";
  (void)!::write(log, header.data(), header.size());
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, log, STDERR_FILENO);
  std::vector<std::string> argv_strings = {"slimlm"};
  argv_strings.insert(argv_strings.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_strings) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  const int spawned = posix_spawn(&pid, "/proc/self/exe", &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  ::close(log);
  if (spawned != 0) {
    ::close(out[0]);
    return IoError("cannot start slimlm {}: {}", args.empty() ? "" : args[0],
                   std::strerror(spawned));
  }
  std::string output;
  char buffer[65536];
  for (;;) {
    const ssize_t n = ::read(out[0], buffer, sizeof(buffer));
    if (n > 0) {
      output.append(buffer, static_cast<size_t>(n));
    } else if (n == 0 || errno != EINTR) {
      break;
    }
  }
  ::close(out[0]);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return output;
  const std::string why = LastLine(log_path);
  if (WIFSIGNALED(status)) {
    return InternalError("slimlm {} was killed by signal {} (log: {})", args[0], WTERMSIG(status),
                         log_path);
  }
  return InternalError("slimlm {} failed: {} (log: {})", args[0], why, log_path);
}

}  // namespace slimlm::tools
