#include "support/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/test_data.h"

extern char** environ;

namespace slimlm::testing {
namespace {

ProcessResult RunProcessImpl(const std::vector<std::string>& argv, double timeout_seconds,
                             double signal_after, int signal_number) {
  ProcessResult result;
  std::string dir = MakeTempDir();
  std::string out_path = dir + "/stdout", err_path = dir + "/stderr";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, 1, out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  posix_spawn_file_actions_addopen(&actions, 2, err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                   0644);
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) {
    result.err = "posix_spawn failed for " + argv[0];
    return result;
  }
  int status = 0;
  auto start = std::chrono::steady_clock::now();
  auto deadline = start + std::chrono::milliseconds(static_cast<int64_t>(timeout_seconds * 1000));
  auto signal_at = start + std::chrono::milliseconds(static_cast<int64_t>(signal_after * 1000));
  bool signalled = false;
  while (true) {
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) break;
    if (signal_after >= 0 && !signalled && std::chrono::steady_clock::now() >= signal_at) {
      kill(pid, signal_number);
      signalled = true;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      result.err = "timed out\n";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  result.out = ReadWholeFile(out_path);
  result.err += ReadWholeFile(err_path);
  return result;
}

std::vector<std::string> SlimlmArgv(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {SlimlmBinary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

}  // namespace

ProcessResult RunProcess(const std::vector<std::string>& argv, double timeout_seconds) {
  return RunProcessImpl(argv, timeout_seconds, -1, 0);
}

std::string ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

ProcessResult RunSlimlm(const std::vector<std::string>& args, double timeout_seconds) {
  return RunProcess(SlimlmArgv(args), timeout_seconds);
}

ProcessResult RunSlimlmAndSignal(const std::vector<std::string>& args, double delay_seconds,
                                 int signal_number) {
  return RunProcessImpl(SlimlmArgv(args), 120, delay_seconds, signal_number);
}

}  // namespace slimlm::testing
