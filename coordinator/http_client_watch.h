// Watching an HTTP client while its completion is computed. A client that hangs up must cancel
// its request (freeing the sequence) at once, not at the next write: a non-streamed completion
// writes nothing until it is done, and a streamed one nothing during a long prefill or in the
// queue. cpp-httplib 0.11 (Debian 12's) gives a handler no handle on its connection, so the
// socket is found by its addresses: the one socket of this process whose local and peer address
// and port are the request's.
//
// CompletionWaiter then sleeps until the request has news (its update listener), the client's
// socket reports a hang-up (POLLRDHUP: the peer closed or reset; data it sends, such as a next
// pipelined request, does not count), or the server stops. No polling loop, no timeout.
#pragma once

#include <memory>
#include <string>

#include "coordinator/request.h"

namespace mmx::coordinator {

// The descriptor of the accepted TCP socket with these addresses (as httplib::Request reports
// them: numeric hosts), or -1 if none is found.
int FindAcceptedSocket(const std::string& local_addr, int local_port, const std::string& remote_addr,
                       int remote_port);

// An eventfd that wakes every waiter once written (the server's stop signal). Stays set.
class StopSignal {
 public:
  StopSignal();
  ~StopSignal();
  StopSignal(const StopSignal&) = delete;
  StopSignal& operator=(const StopSignal&) = delete;
  void Raise();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
};

class CompletionWaiter {
 public:
  enum class Event { kUpdate, kHangUp, kStop };
  // Becomes `request`'s update listener until destroyed. `client_socket` may be -1 (unknown: a
  // hang-up is then noticed only by a failed write).
  CompletionWaiter(Request* request, int client_socket, const StopSignal* stop);
  ~CompletionWaiter();
  CompletionWaiter(const CompletionWaiter&) = delete;
  CompletionWaiter& operator=(const CompletionWaiter&) = delete;

  // Blocks until one of the events. An update that came before the call returns at once.
  Event Wait();

 private:
  struct Wakeup;
  Request* const request_;
  const int client_socket_;
  const StopSignal* const stop_;
  std::shared_ptr<Wakeup> wakeup_;  // shared with the listener, which may run after we are gone
};

}  // namespace mmx::coordinator
