#include "coordinator/http_listener.h"

#include <httplib.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace mmx::coordinator {

HttpListener::HttpListener(std::unique_ptr<httplib::Server> server) : server_(std::move(server)) {}

absl::StatusOr<std::unique_ptr<HttpListener>> HttpListener::Start(std::unique_ptr<httplib::Server> server,
                                                                  const std::string& address,
                                                                  const std::string& flag) {
  const size_t colon = address.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(address.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat(flag, " '", address, "' is not HOST:PORT"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) host = "0.0.0.0";

  auto listener = std::unique_ptr<HttpListener>(new HttpListener(std::move(server)));
  httplib::Server& http = *listener->server_;
  http.set_socket_options([](int sock) {
    const int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  errno = 0;
  const bool bound = port == 0 ? (listener->port_ = http.bind_to_any_port(host)) > 0
                               : http.bind_to_port(host, port) && (listener->port_ = port) > 0;
  if (!bound) {
    return absl::UnavailableError(absl::StrCat("cannot listen on ", address, " (", flag, ")",
                                               errno != 0 ? absl::StrCat(": ", std::strerror(errno)) : ""));
  }
  listener->thread_ = std::thread([&http, &done = listener->listen_returned_] {
    http.listen_after_bind();
    done = true;
  });
  return listener;
}

HttpListener::~HttpListener() {
  // stop() does nothing until the listening loop runs, and the loop would then run forever:
  // wait for it to start (it starts at once; it may also have ended, on a socket error).
  while (thread_.joinable() && !server_->is_running() && !listen_returned_) std::this_thread::yield();
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace mmx::coordinator
