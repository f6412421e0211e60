// UcxWorker: one UCP context and worker (UCS_THREAD_MODE_MULTI) plus the progress thread that
// drives it. It knows nothing of envelopes or peers; UcxTransport (ucx_transport.h) builds on it.
//
// Who drives progress: one thread at a time holds the drive role (role_). A thread that waits
// for something of its own (a receiver for its message, a sender for its completion) may take
// the role and call ucp_worker_progress itself for a bounded window (DriveUntil): the message
// then lands on the thread that wants it, with no wakeup of another thread in between. The
// progress thread takes the role whenever nobody else has it: it drains ucp_worker_progress,
// arms the worker (ucp_worker_arm) and BLOCKS in epoll_wait on the worker's event fd
// (ucp_worker_get_efd) and an eventfd of our own, which Kick() and shutdown write. It never
// spins while idle: the machines we run on have few cores and several processes share them.
// While another thread drives, the worker's fd is disabled in the progress thread's epoll set,
// so the messages that thread is busy receiving do not wake the progress thread too.
//
// The invariant that makes this safe: whoever hands the role back has progressed the worker
// until it had nothing left, re-armed it and enabled its fd in the watch set. ucp_worker_arm
// only promises a signal for events that arrive after it, so a thread that progressed after the
// progress thread armed and then stopped as soon as its own request completed could leave a
// message half-read (TCP reads part of a message per call) with no signal left to wake the
// progress thread: a message stuck until the next one arrived (issue 17's stall, with a sender
// progressing until its send completed; tests/transport/ucx_stress_test.cc).
//
// Handing back costs four system calls (drain, arm, and the watch set twice), which on a VM is
// a third of a small message's latency. So a driver that got what it waited for while no other
// thread sleeps on the progress thread lingers instead: it leaves the role marked lingering and
// the next driver (usually the same thread, microseconds later: a reply to send, the next
// message to wait for) takes it over as is. The progress thread hands back a role left
// lingering for kLinger to 2 x kLinger (a timerfd the lingering driver sets; while drivers keep
// the role the progress thread sleeps without waking), and any thread about to sleep on it
// (Sleeper) hands back at once. The price: an event that arrives while a role lingers and nobody
// waits, such as a peer's rendezvous that only our progress completes, waits up to 2 x kLinger.
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

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"

struct epoll_event;

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
  // Stops and joins the progress thread (idempotent). Handlers run only on threads that call
  // DriveUntil() from then on.
  void Stop();

  // Makes the progress thread run ucp_worker_progress again soon, e.g. after another thread
  // posted an operation that only progress can move forward. Thread-safe, cheap (one write).
  void Kick();
  // Drives progress on the calling thread until `done()` is true or `budget` has passed
  // (InfiniteDuration: until done), and returns done(). Returns false at once while another
  // thread drives (that thread's progress completes ours too; the caller sleeps on it). Before
  // it lets go of the role it hands back or lingers (see above). After false the caller sleeps
  // inside a Sleeper.
  // Must not be called from inside a UCX callback. `done` is called often: make it cheap.
  bool DriveUntil(absl::FunctionRef<bool()> done, absl::Duration budget);
  // The same, and past the budget on for up to `moving_budget` more while `moving()` says a
  // transfer it waits on is under way (one that moves only as progress runs).
  bool DriveUntil(absl::FunctionRef<bool()> done, absl::Duration budget, absl::FunctionRef<bool()> moving,
                  absl::Duration moving_budget);
  // How long the progress thread lets a driver's role linger before it hands it back.
  static constexpr absl::Duration kLinger = absl::Microseconds(200);

  // Held by a thread while it sleeps waiting for what the progress thread will complete (after
  // DriveUntil returned false): makes sure nothing lingers, so the progress thread watches.
  class Sleeper {
   public:
    explicit Sleeper(UcxWorker& worker);
    ~Sleeper();
    Sleeper(const Sleeper&) = delete;
    Sleeper& operator=(const Sleeper&) = delete;

   private:
    UcxWorker& worker_;
  };

  ucp_worker_h worker() const { return worker_; }
  // The worker's address (ucp_worker_get_address), 50-250 bytes.
  const std::string& address() const { return address_; }
  // Largest header ucp_am_send_nbx accepts on this worker.
  size_t max_am_header() const { return max_am_header_; }
  // How often the progress thread woke for an event or a kick (not for its own timeouts while
  // another thread drives): to verify it sleeps when idle and while others drive.
  uint64_t num_wakeups() const { return wakeups_.load(std::memory_order_relaxed); }

 private:
  UcxWorker() = default;
  void Run();
  // With the drive role held: progress until nothing is left, then arm (again while UCX says
  // events slipped in). Returns the arm status: UCS_OK means the worker's event fd will signal
  // for the next event.
  ucs_status_t DrainAndArm();
  // With the role held: drain, arm, watch the fd again, free the role.
  void HandBack();
  // Makes sure the linger timer fires between kLinger and 2 x kLinger after `now_nanos`
  // (CLOCK_MONOTONIC); only the holder of the drive role calls it.
  void ArmLingerTimer(uint64_t now_nanos);
  // Hands back a role left lingering, if it still is.
  void EndLingering();
  // epoll_wait on the watch set with a timeout in nanoseconds (-1: none).
  int WaitForEvents(::epoll_event* events, int max_events, int64_t timeout_nanos);
  // Enables the worker's event fd in the progress thread's epoll set (one-shot), or disables
  // it. Only the holder of the drive role changes it. False if epoll_ctl fails.
  bool WatchWorker(bool watch);

  ucp_context_h context_ = nullptr;
  ucp_worker_h worker_ = nullptr;
  std::string address_;
  size_t max_am_header_ = 0;
  int worker_fd_ = -1;  // owned by UCX
  int wake_fd_ = -1;    // eventfd for Kick() and Stop()
  int linger_timer_fd_ = -1;  // timerfd: fires after a driver left its role lingering
  std::atomic<uint64_t> linger_deadline_nanos_{0};  // when linger_timer_fd_ fires next (or fired)
  int watch_fd_ = -1;   // the progress thread's epoll set: wake_fd_, linger_timer_fd_, and worker_fd_ (enabled when idle)
  std::thread thread_;
  std::atomic<uint64_t> role_{0};    // the drive role: free, held, or lingering since a time
  std::atomic<int> sleepers_{0};     // threads inside a Sleeper
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> wakeups_{0};
};

}  // namespace mmx::transport
