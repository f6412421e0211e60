#include "transport/ucx_worker.h"

#include <cstdlib>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/ucs_status.h"

namespace mmx::transport {

absl::StatusOr<std::unique_ptr<UcxWorker>> UcxWorker::Create(const std::string& net_devices) {
  std::unique_ptr<UcxWorker> self(new UcxWorker());

  ucp_config_t* config = nullptr;
  MMX_RETURN_IF_ERROR(UcsStatus(ucp_config_read(nullptr, nullptr, &config), "ucp_config_read"));
  // A mutex, not UCX's default spinlock, guards the worker in multi-thread mode: our threads
  // (progress, senders, receivers) outnumber the cores, and a waiter spinning on a descheduled
  // holder burned ~20% of a worker's CPU (measured with perf on the disaggregated layout).
  // An explicit UCX_USE_MT_MUTEX in the environment still wins.
  if (getenv("UCX_USE_MT_MUTEX") == nullptr) ucp_config_modify(config, "USE_MT_MUTEX", "y");
  // No mm (the shared-memory FIFO transports: sysv, posix, xpmem) unless UCX_TLS asks for them.
  // A process killed while writing into a peer's FIFO leaves a reserved, never-completed slot,
  // and the receiver, which drains its FIFO in order, stops receiving from everyone: a worker
  // killed on the same host as others wedged a surviving stage about 1 run in 20 of the
  // kill-and-rejoin test (0 in 60 without mm). This is why UCX itself drops mm under its PEER
  // error handling. Small messages then go over TCP loopback on one host (tens of microseconds,
  // under the thread wake-ups every message costs anyway); large ones still use CMA
  // (process_vm_readv, zero-copy), and separate machines never used mm.
  if (getenv("UCX_TLS") == nullptr) ucp_config_modify(config, "TLS", "^mm");
  if (!net_devices.empty() && getenv("UCX_NET_DEVICES") == nullptr) {
    ucp_config_modify(config, "NET_DEVICES", net_devices.c_str());
  }
  ucp_params_t params{};
  params.field_mask = UCP_PARAM_FIELD_FEATURES | UCP_PARAM_FIELD_NAME;
  // WAKEUP makes UCX pick transports whose events can wake the blocked progress thread.
  params.features = UCP_FEATURE_AM | UCP_FEATURE_WAKEUP;
  params.name = "mmx";
  ucs_status_t status = ucp_init(&params, config, &self->context_);
  ucp_config_release(config);
  MMX_RETURN_IF_ERROR(UcsStatus(status, "ucp_init"));

  ucp_worker_params_t worker_params{};
  worker_params.field_mask = UCP_WORKER_PARAM_FIELD_THREAD_MODE;
  // MULTI: Send() posts from caller threads while the progress thread progresses.
  worker_params.thread_mode = UCS_THREAD_MODE_MULTI;
  MMX_RETURN_IF_ERROR(UcsStatus(ucp_worker_create(self->context_, &worker_params, &self->worker_),
                                "ucp_worker_create"));

  ucp_worker_attr_t attr{};
  attr.field_mask = UCP_WORKER_ATTR_FIELD_THREAD_MODE | UCP_WORKER_ATTR_FIELD_ADDRESS |
                    UCP_WORKER_ATTR_FIELD_MAX_AM_HEADER;
  MMX_RETURN_IF_ERROR(UcsStatus(ucp_worker_query(self->worker_, &attr), "ucp_worker_query"));
  self->address_.assign(reinterpret_cast<const char*>(attr.address), attr.address_length);
  self->max_am_header_ = attr.max_am_header;
  ucp_worker_release_address(self->worker_, attr.address);
  if (attr.thread_mode != UCS_THREAD_MODE_MULTI) {
    return absl::InternalError(
        "ucp_worker_create: UCX granted no multi-threaded worker (is libucx built with "
        "--enable-mt?)");
  }

  MMX_RETURN_IF_ERROR(
      UcsStatus(ucp_worker_get_efd(self->worker_, &self->worker_fd_), "ucp_worker_get_efd"));
  self->wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (self->wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("ucx worker: eventfd: ", std::strerror(errno)));
  }

  return self;
}

absl::Status UcxWorker::SetHandler(unsigned am_id, ucp_am_recv_callback_t handler, void* arg) {
  ucp_am_handler_param_t params{};
  params.field_mask = UCP_AM_HANDLER_PARAM_FIELD_ID | UCP_AM_HANDLER_PARAM_FIELD_FLAGS |
                      UCP_AM_HANDLER_PARAM_FIELD_CB | UCP_AM_HANDLER_PARAM_FIELD_ARG;
  params.id = am_id;
  params.flags = UCP_AM_FLAG_WHOLE_MSG;
  params.cb = handler;
  params.arg = arg;
  return UcsStatus(ucp_worker_set_am_recv_handler(worker_, &params),
                   "ucp_worker_set_am_recv_handler");
}

UcxWorker::~UcxWorker() {
  Stop();
  if (worker_ != nullptr) ucp_worker_destroy(worker_);
  if (context_ != nullptr) ucp_cleanup(context_);
  if (wake_fd_ >= 0) close(wake_fd_);
}

absl::Status UcxWorker::Start() {
  if (thread_.joinable()) return absl::OkStatus();
  stop_.store(false);
  thread_ = std::thread([this] { Run(); });
  return absl::OkStatus();
}

void UcxWorker::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  Kick();
  thread_.join();
}

void UcxWorker::Kick() {
  const uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: a wakeup is pending anyway.
  [[maybe_unused]] ssize_t written = write(wake_fd_, &one, sizeof(one));
}

void UcxWorker::Run() {
  pollfd fds[2] = {{worker_fd_, POLLIN, 0}, {wake_fd_, POLLIN, 0}};
  while (!stop_.load()) {
    while (ucp_worker_progress(worker_) != 0) {
    }
    // Arm only after progress returned 0: UCX signals the fd only for events that arrive
    // after arming. BUSY means events slipped in since; progress again.
    const ucs_status_t status = ucp_worker_arm(worker_);
    if (status == UCS_ERR_BUSY) continue;
    // A transport that cannot arm leaves us a bounded poll instead of a wait for ever: slower
    // to notice events, but still asleep most of the time.
    const int timeout_ms = status == UCS_OK ? -1 : 1;
    if (stop_.load()) break;
    const int ready = poll(fds, 2, timeout_ms);
    wakeups_.fetch_add(1, std::memory_order_relaxed);
    if (ready > 0 && (fds[1].revents & POLLIN) != 0) {
      uint64_t count = 0;
      [[maybe_unused]] ssize_t got = read(wake_fd_, &count, sizeof(count));
    }
  }
}

}  // namespace mmx::transport
