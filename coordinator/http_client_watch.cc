#include "coordinator/http_client_watch.h"

#include <netdb.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <filesystem>

namespace mmx::coordinator {
namespace {

bool Matches(const sockaddr_storage& addr, socklen_t len, const std::string& host, int port) {
  char h[NI_MAXHOST], p[NI_MAXSERV];
  if (getnameinfo(reinterpret_cast<const sockaddr*>(&addr), len, h, sizeof h, p, sizeof p,
                  NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
    return false;
  }
  return host == h && std::atoi(p) == port;
}

}  // namespace

int FindAcceptedSocket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                       int remote_port) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd", ec)) {
    char* end = nullptr;
    const long fd = std::strtol(entry.path().filename().c_str(), &end, 10);
    if (*end != '\0') continue;
    struct stat st;
    if (fstat(static_cast<int>(fd), &st) != 0 || !S_ISSOCK(st.st_mode)) continue;
    sockaddr_storage peer{}, local{};
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    if (getpeername(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&peer), &peer_len) != 0) continue;
    if (getsockname(static_cast<int>(fd), reinterpret_cast<sockaddr*>(&local), &local_len) != 0) continue;
    if (Matches(peer, peer_len, remote_addr, remote_port) && Matches(local, local_len, local_addr, local_port)) {
      return static_cast<int>(fd);
    }
  }
  return -1;
}

StopSignal::StopSignal() : fd_(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
StopSignal::~StopSignal() {
  if (fd_ >= 0) close(fd_);
}
void StopSignal::Raise() {
  const uint64_t one = 1;
  (void)!write(fd_, &one, sizeof one);
}

struct CompletionWaiter::Wakeup {
  Wakeup() : fd(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}
  ~Wakeup() {
    if (fd >= 0) close(fd);
  }
  void Wake() const {
    const uint64_t one = 1;
    (void)!write(fd, &one, sizeof one);
  }
  const int fd;
};

CompletionWaiter::CompletionWaiter(Request* request, int client_socket, const StopSignal* stop)
    : request_(request), client_socket_(client_socket), stop_(stop), wakeup_(std::make_shared<Wakeup>()) {
  std::weak_ptr<Wakeup> weak = wakeup_;
  request_->SetUpdateListener([weak] {
    if (std::shared_ptr<Wakeup> w = weak.lock()) w->Wake();
  });
  wakeup_->Wake();  // what arrived before the listener was set
}

CompletionWaiter::~CompletionWaiter() { request_->SetUpdateListener(nullptr); }

CompletionWaiter::Event CompletionWaiter::Wait() {
  pollfd fds[3] = {{wakeup_->fd, POLLIN, 0}, {stop_ ? stop_->fd() : -1, POLLIN, 0}, {client_socket_, POLLRDHUP, 0}};
  while (true) {
    const int n = poll(fds, 3, -1);  // a negative fd is skipped
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Event::kHangUp;  // cannot watch: treat the client as gone rather than spin
    if (fds[1].revents != 0) return Event::kStop;
    if (fds[0].revents != 0) {
      uint64_t count = 0;
      (void)!read(wakeup_->fd, &count, sizeof count);
      return Event::kUpdate;
    }
    if (fds[2].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) return Event::kHangUp;
  }
}

}  // namespace mmx::coordinator
