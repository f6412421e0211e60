// UcxWorker: one UCP context and worker (UCS_THREAD_MODE_MULTI) plus the progress thread that
// drives it. It knows nothing of envelopes or peers; UcxTransport (ucx_transport.h) builds on it.
//
// Progress thread: drains ucp_worker_progress, then arms the worker (ucp_worker_arm) and BLOCKS
// in poll() on the worker's event fd (ucp_worker_get_efd) and an eventfd of our own, which
// Kick() and shutdown write. It never spins while idle: the machines we run on have few cores
// and several processes share them, and a spinning receiver would steal the CPU the sender and
// the compute threads need.
//
// UCX reads its own UCX_* environment variables (UCX_TLS, UCX_NET_DEVICES, ...) in
// ucp_config_read; this class reads no environment itself.
#pragma once

#include <ucp/api/ucp.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace mmx::transport {

class UcxWorker {
 public:
  // Creates the context (features AM and WAKEUP) and the worker. The progress thread is not
  // started yet, so the caller can register handlers and set up what they use first. Errors
  // come from UCX via UcsStatus (e.g. Unavailable when no transport can carry active messages),
  // or Internal when the worker is not thread-safe or an event fd cannot be had.
  // NOTE: a process must not fork() after the first Create (UCX state does not survive it).
  // `net_devices` (UCX_NET_DEVICES syntax) limits UCX to those network devices unless the
  // environment sets UCX_NET_DEVICES; "" = every device.
  static absl::StatusOr<std::unique_ptr<UcxWorker>> Create(const std::string& net_devices = "");
  // Registers `handler` with `arg` for active message id `am_id` (UCP_AM_FLAG_WHOLE_MSG). Call
  // before Start(). Errors from UCX via UcsStatus.
  absl::Status SetHandler(unsigned am_id, ucp_am_recv_callback_t handler, void* arg);
  // Stops the progress thread, then destroys the worker and the context. Endpoints must have
  // been closed by then.
  ~UcxWorker();
  UcxWorker(const UcxWorker&) = delete;
  UcxWorker& operator=(const UcxWorker&) = delete;

  // Starts the progress thread (idempotent).
  absl::Status Start();
  // Stops and joins the progress thread (idempotent). Handlers run on the thread that calls
  // Progress() from then on.
  void Stop();

  // Makes the progress thread run ucp_worker_progress again soon, e.g. after another thread
  // posted an operation that only progress can move forward. Thread-safe, cheap (one write).
  void Kick();
  // Runs ucp_worker_progress once on the calling thread and returns its count. Thread-safe
  // (UCX serializes workers in MULTI mode); must not be called from inside a UCX callback.
  unsigned Progress() { return ucp_worker_progress(worker_); }

  ucp_worker_h worker() const { return worker_; }
  // The worker's address (ucp_worker_get_address), 50-250 bytes.
  const std::string& address() const { return address_; }
  // Largest header ucp_am_send_nbx accepts on this worker.
  size_t max_am_header() const { return max_am_header_; }
  // How often the progress thread woke from poll(): to verify it sleeps when idle.
  uint64_t num_wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

 private:
  UcxWorker() = default;
  void Run();

  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::string address_;
  size_t max_am_header_ = 0;
  int worker_fd_ = -1;  // owned by UCX
  int wake_fd_ = -1;    // eventfd for Kick() and Stop()
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> wakeups_{0};
};

}  // namespace mmx::transport
