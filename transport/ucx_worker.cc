#include "transport/ucx_worker.h"

#include <cstdlib>

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <ctime>

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
  self->linger_timer_fd_ = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
  if (self->linger_timer_fd_ < 0) {
    return absl::InternalError(absl::StrCat("ucx worker: timerfd: ", std::strerror(errno)));
  }
  self->watch_fd_ = epoll_create1(EPOLL_CLOEXEC);
  epoll_event wake{};
  wake.events = EPOLLIN;
  wake.data.fd = self->wake_fd_;
  epoll_event timer{};
  timer.events = EPOLLIN;
  timer.data.fd = self->linger_timer_fd_;
  epoll_event worker{};
  worker.events = EPOLLIN | EPOLLONESHOT;
  worker.data.fd = self->worker_fd_;
  if (self->watch_fd_ < 0 || epoll_ctl(self->watch_fd_, EPOLL_CTL_ADD, self->wake_fd_, &wake) != 0 ||
      epoll_ctl(self->watch_fd_, EPOLL_CTL_ADD, self->worker_fd_, &worker) != 0 ||
      epoll_ctl(self->watch_fd_, EPOLL_CTL_ADD, self->linger_timer_fd_, &timer) != 0) {
    return absl::InternalError(absl::StrCat("ucx worker: epoll: ", std::strerror(errno)));
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
  if (linger_timer_fd_ >= 0) close(linger_timer_fd_);
  if (watch_fd_ >= 0) close(watch_fd_);
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

ucs_status_t UcxWorker::DrainAndArm() {
  for (;;) {
    while (ucp_worker_progress(worker_) != 0) {
    }
    // BUSY: events arrived since the last progress; drain them too.
    const ucs_status_t status = ucp_worker_arm(worker_);
    if (status != UCS_ERR_BUSY) return status;
  }
}

namespace {

constexpr uint64_t kFree = 0;     // role_: nobody drives; the progress thread watches the fd
constexpr uint64_t kHeld = 1;     // role_: a thread drives (the fd is disabled in the watch set)
constexpr uint64_t kLingering = 2;  // role_ low bits: left without re-arming, since (high bits) ns

uint64_t NowNanos() {
  timespec now{};
  clock_gettime(CLOCK_MONOTONIC, &now);
  return static_cast<uint64_t>(now.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(now.tv_nsec);
}

bool IsLingering(uint64_t role) { return (role & 3) == kLingering; }
uint64_t LingeringSince(uint64_t role) { return role >> 2; }
uint64_t Lingering(uint64_t since_nanos) { return (since_nanos << 2) | kLingering; }

}  // namespace

bool UcxWorker::DriveUntil(absl::FunctionRef<bool()> done, absl::Duration budget) {
  return DriveUntil(done, budget, [] { return false; }, absl::ZeroDuration());
}

bool UcxWorker::DriveUntil(absl::FunctionRef<bool()> done, absl::Duration budget, absl::FunctionRef<bool()> moving,
                           absl::Duration moving_budget) {
  const absl::Time give_up = absl::Now() + budget;  // InfiniteDuration: InfiniteFuture
  const absl::Time moving_give_up = give_up + moving_budget;
  auto more = [&] {
    const absl::Time now = absl::Now();
    return now < give_up || (now < moving_give_up && moving());
  };
  for (;;) {
    if (done()) return true;
    if (absl::Now() >= give_up) return false;
    uint64_t role = role_.load();
    // Another thread drives: what it receives reaches us too, through the mailbox or the send's
    // completion. Sleep on that rather than spin beside it on a machine with few cores.
    if (role != kFree && !IsLingering(role)) return false;
    if (!role_.compare_exchange_strong(role, kHeld)) continue;
    // While we drive, events must not wake the progress thread: on a VM that wakeup (and the
    // CPU it takes from us or the peer) costs more than the message. A lingering driver left
    // the fd disabled already.
    const bool from_free = role == kFree;
    if (from_free) WatchWorker(false);
    bool finished = false;
    // Progress in spells of up to 64 calls between clock reads (a call costs ~0.1-1 us).
    while (!(finished = done()) && more()) {
      for (int i = 0; i < 64 && !done(); ++i) ucp_worker_progress(worker_);
    }
    if (!finished || sleepers_.load() > 0) {
      HandBack();
      return finished || done();
    }
    // We got what we waited for and nobody sleeps on the progress thread: leave without the
    // four system calls of a hand-back; the next driver (most often this thread, a few
    // microseconds from now) takes over as is. The progress thread hands back after kLinger to
    // 2 x kLinger (the linger timer).
    const uint64_t now = NowNanos();
    role_.store(Lingering(now));
    ArmLingerTimer(now);  // the progress thread sleeps without a timeout while others drive
    if (sleepers_.load() > 0) EndLingering();  // a sleeper came between our check and the store
    return true;
  }
}

void UcxWorker::ArmLingerTimer(uint64_t now_nanos) {
  // Setting a timer is a VM exit here (8 us, against 1 us for a plain system call), too dear
  // for every message. So a deadline kLinger to 2 x kLinger ahead is good enough: it is moved
  // (to 2 x kLinger from now) only when it is less than kLinger away. While drivers stream,
  // that is one setting per kLinger and the timer never fires; when they stop, the progress
  // thread hands back between kLinger and 2 x kLinger later.
  const uint64_t linger = static_cast<uint64_t>(absl::ToInt64Nanoseconds(kLinger));
  if (linger_deadline_nanos_.load(std::memory_order_relaxed) >= now_nanos + linger) return;
  const uint64_t deadline = now_nanos + 2 * linger;
  itimerspec when{};
  when.it_value.tv_sec = static_cast<time_t>(deadline / 1'000'000'000u);
  when.it_value.tv_nsec = static_cast<long>(deadline % 1'000'000'000u);
  if (timerfd_settime(linger_timer_fd_, TFD_TIMER_ABSTIME, &when, nullptr) != 0) {
    Kick();  // no timer: the progress thread looks at the role now and times its own wait
    return;
  }
  linger_deadline_nanos_.store(deadline, std::memory_order_relaxed);
}

void UcxWorker::HandBack() {
  // The progress thread may be asleep on an arm that our progress used up: leave the worker
  // drained and armed for it. An arm that fails (a transport without events) gets it awake to
  // fall back on its timed wait.
  const ucs_status_t armed = DrainAndArm();
  // Free first, then watch: the one-shot watch may fire at once (an event came since the arm),
  // and the progress thread it wakes must find the role free and drain. Watching first, it
  // could find the role still held, sleep without a timeout and leave the event unread: a
  // message stuck until the next one (tests/transport/ucx_stress_test.cc).
  role_.store(kFree);
  WatchWorker(true);
  if (armed != UCS_OK) Kick();
}

void UcxWorker::EndLingering() {
  uint64_t role = role_.load();
  if (IsLingering(role) && role_.compare_exchange_strong(role, kHeld)) HandBack();
}

UcxWorker::Sleeper::Sleeper(UcxWorker& worker) : worker_(worker) {
  worker_.sleepers_.fetch_add(1);
  worker_.EndLingering();  // we sleep on the progress thread: it must be watching
}

UcxWorker::Sleeper::~Sleeper() { worker_.sleepers_.fetch_sub(1); }

bool UcxWorker::WatchWorker(bool watch) {
  // One-shot: an event disables the fd until the next WatchWorker(true), so a progress thread
  // woken just as a driver took the role (before the driver's WatchWorker(false)) sleeps on
  // instead of finding the fd ready again and again.
  epoll_event event{};
  event.events = watch ? (EPOLLIN | EPOLLONESHOT) : EPOLLONESHOT;
  event.data.fd = worker_fd_;
  return epoll_ctl(watch_fd_, EPOLL_CTL_MOD, worker_fd_, &event) == 0;
}

int UcxWorker::WaitForEvents(::epoll_event* events, int max_events, int64_t timeout_nanos) {
  static std::atomic<bool> have_pwait2{true};
  if (have_pwait2.load(std::memory_order_relaxed)) {
    timespec timeout{timeout_nanos / 1'000'000'000, timeout_nanos % 1'000'000'000};
    const int ready = epoll_pwait2(watch_fd_, events, max_events, timeout_nanos < 0 ? nullptr : &timeout, nullptr);
    if (ready >= 0 || errno != ENOSYS) return ready;
    have_pwait2.store(false);  // a kernel before 5.11: millisecond timeouts, rounded up
  }
  const int timeout_ms = timeout_nanos < 0 ? -1 : static_cast<int>((timeout_nanos + 999'999) / 1'000'000);
  return epoll_wait(watch_fd_, events, max_events, timeout_ms);
}

void UcxWorker::Run() {
  epoll_event events[3];
  const uint64_t linger = static_cast<uint64_t>(absl::ToInt64Nanoseconds(kLinger));
  while (!stop_.load()) {
    uint64_t role = role_.load();
    int64_t timeout_nanos = -1;  // wait for an event or a kick
    if (role == kFree) {
      if (!role_.compare_exchange_strong(role, kHeld)) continue;
      const ucs_status_t armed = DrainAndArm();
      WatchWorker(true);  // again, if an event woke us (one-shot)
      role_.store(kFree);
      // A transport that cannot arm leaves us a bounded wait instead of one for ever: slower
      // to notice events, but still asleep most of the time.
      if (armed != UCS_OK) timeout_nanos = 1'000'000;
    } else if (IsLingering(role)) {
      const uint64_t age = NowNanos() - LingeringSince(role);
      if (age >= linger) {
        if (role_.compare_exchange_strong(role, kHeld)) HandBack();
        continue;
      }
      timeout_nanos = static_cast<int64_t>(linger - age);
    }
    // Otherwise a thread drives: it hands back (the worker's fd is watched again then), or it
    // lingers and arms the linger timer, which wakes us to hand back. No timeout of our own:
    // a wakeup every kLinger while a driver streams was a context switch per message on a
    // core shared with that driver, 10-20% of tcp bandwidth (docs/benchmarks.md).
    if (stop_.load()) break;
    const int ready = WaitForEvents(events, 3, timeout_nanos);
    if (ready > 0) wakeups_.fetch_add(1, std::memory_order_relaxed);
    for (int i = 0; i < ready; ++i) {
      if (events[i].data.fd != wake_fd_ && events[i].data.fd != linger_timer_fd_) continue;
      uint64_t count = 0;  // eventfd: kicks; timerfd: expirations
      [[maybe_unused]] ssize_t got = read(events[i].data.fd, &count, sizeof(count));
    }
  }
}

}  // namespace mmx::transport
