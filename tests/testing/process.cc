#include "tests/testing/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

extern char** environ;

namespace mmx::testing {
namespace {

std::string TempFile(const char* what) {
  std::string path = absl::StrCat("/tmp/mmx-", what, "-XXXXXX");
  const int fd = mkstemp(path.data());
  if (fd >= 0) close(fd);
  return path;
}

}  // namespace

std::string BinaryPath(const std::string& name) { return std::string(MMX_BINARY_DIR) + "/bin/" + name; }

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string TempPath(const std::string& name) {
  static std::atomic<int> next{0};
  const char* dir = std::getenv("TEST_TMPDIR");
  return absl::StrCat(dir != nullptr ? dir : "/tmp", "/mmx-", getpid(), "-", next++, "-", name);
}

ProcessResult RunToExit(const std::vector<std::string>& argv, absl::Duration timeout, const std::string& cwd,
                        const std::string& input, bool separate_streams) {
  const std::string out_path = TempFile("out"), err_path = separate_streams ? TempFile("err") : out_path;
  const std::string in_path = TempFile("in");
  {
    std::ofstream in(in_path, std::ios::binary);
    in << input;
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out_path.c_str(), O_WRONLY | O_TRUNC, 0644);
  if (separate_streams) {
    posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err_path.c_str(), O_WRONLY | O_TRUNC, 0644);
  } else {
    posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  }
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, in_path.c_str(), O_RDONLY, 0);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  ProcessResult result;
  if (posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ) != 0) {
    posix_spawn_file_actions_destroy(&actions);
    result.output = result.err = absl::StrCat("cannot start ", argv[0]);
    return result;
  }
  posix_spawn_file_actions_destroy(&actions);
  // The child's exit wakes the wait; the timeout kills it.
  int status = 0;
  absl::Notification exited;
  std::thread reaper([&] {
    waitpid(pid, &status, 0);
    exited.Notify();
  });
  if (!exited.WaitForNotificationWithTimeout(timeout)) {
    result.timed_out = true;
    kill(pid, SIGKILL);
  }
  reaper.join();
  result.exit_code = !result.timed_out && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  result.out = ReadFile(out_path);
  result.err = separate_streams ? ReadFile(err_path) : "";
  result.output = result.out + result.err;
  if (!separate_streams) result.out.clear();
  unlink(out_path.c_str());
  if (separate_streams) unlink(err_path.c_str());
  unlink(in_path.c_str());
  return result;
}

ProcessResult RunShell(const std::string& command, absl::Duration timeout) {
  return RunToExit({"/bin/sh", "-c", command}, timeout, "", "", /*separate_streams=*/true);
}

}  // namespace mmx::testing
