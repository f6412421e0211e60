// HttpListener: a cpp-httplib server bound to HOST:PORT and serving on a thread of its own until
// destroyed. Shared by the metrics endpoint and the OpenAI-compatible API.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace mmx::coordinator {

class HttpListener {
 public:
  // Binds `server` (routes set) to `address`: HOST:PORT, HOST may be an IPv6 address in
  // brackets, port 0 any free port. With SO_REUSEADDR but not cpp-httplib's default
  // SO_REUSEPORT, which would let another process bind the same port and take some of its
  // connections. Errors name `flag` (the command-line option the address came from).
  static absl::StatusOr<std::unique_ptr<HttpListener>> Start(std::unique_ptr<httplib::Server> server,
                                                             const std::string& address, const std::string& flag);
  // Stops accepting, waits for the handlers to return.
  ~HttpListener();
  int port() const { return port_; }

 private:
  explicit HttpListener(std::unique_ptr<httplib::Server> server);
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::atomic<bool> listen_returned_{false};
  std::thread thread_;
};

}  // namespace mmx::coordinator
