// A `slimlm serve` child process on 127.0.0.1 and a free port (--port 0, read back from the
// line it prints), for tests that talk to it with real clients. The destructor kills it.
#ifndef SLIMLM_TESTS_SUPPORT_SERVER_PROCESS_H_
#define SLIMLM_TESTS_SUPPORT_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

namespace slimlm::testing {

class ServerProcess {
 public:
  // Starts `slimlm serve MODEL --port 0 ARGS...` and waits (60 s at most) until it listens.
  // ok() is false when it exited first or never said where it listens; err() tells why.
  ServerProcess(const std::string& model, const std::vector<std::string>& args);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  bool ok() const { return port_ > 0; }
  int port() const { return port_; }
  std::string url() const;  // "http://127.0.0.1:PORT"
  void Signal(int signal);
  // Waits up to `timeout_seconds` for the process to end: its exit code, -1 if still running
  // (or killed by a signal).
  int Wait(double timeout_seconds);
  std::string out() const;
  std::string err() const;

 private:
  pid_t pid_ = -1;
  int port_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
  std::string out_path_, err_path_;
};

// The absolute path of a program found on PATH; "" when absent.
std::string FindProgram(const std::string& name);

}  // namespace slimlm::testing

#endif  // SLIMLM_TESTS_SUPPORT_SERVER_PROCESS_H_
