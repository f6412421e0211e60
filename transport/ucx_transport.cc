#include "transport/ucx_transport.h"

#include <algorithm>
#include <atomic>

#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "base/status_macros.h"
#include "transport/crc32c.h"
#include "transport/envelope.h"
#include "transport/little_endian.h"
#include "transport/ucs_status.h"

namespace mmx::transport {
namespace {

// The frame around UCX's address bytes (ucx_transport.h): magic, length, CRC-32C, little-endian.
constexpr uint32_t kAddressMagic = 0x41584D4Du;  // bytes "MMXA"
constexpr size_t kAddressFrameBytes = 12;

}  // namespace

// A posted send. Owned jointly by the sending thread and the UCX callback (refs = 2); whoever
// lets go last deletes it. A sender may give up on a send to a peer that was disconnected (it
// died: UCX in error mode NONE would otherwise never complete the request); then the callback,
// if it ever runs, frees the request. The frame and iov live here because UCX reads them until
// completion. NOTE: the caller's payload is not copied: it is only read while the peer pulls it,
// and a disconnected peer is a dead one (the control plane says so), so it pulls nothing.
struct UcxTransport::SendState {
  absl::Mutex mu;
  ucs_status_t status ABSL_GUARDED_BY(mu) = UCS_OK;
  bool done ABSL_GUARDED_BY(mu) = false;
  bool abandoned ABSL_GUARDED_BY(mu) = false;
  bool peer_gone ABSL_GUARDED_BY(mu) = false;  // disconnected, replaced or shut down meanwhile
  std::atomic<bool> done_flag{false};  // polled without the lock while the sender progresses
  std::atomic<int> refs{2};
  std::string frame;
  ucp_dt_iov_t iov[2];
  size_t payload_bytes = 0;

  void Release() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  bool Finished() const ABSL_SHARED_LOCKS_REQUIRED(mu) { return done || peer_gone; }
};

// A rendezvous message whose data UCX is pulling into message.payload. For the split form the
// data starts with the caller header, which is checked and moved out on completion.
struct UcxTransport::RendezvousReceive {
  UcxTransport* transport = nullptr;
  Message message;
  bool split = false;
  std::string prefix;         // split form: the envelope prefix, for the checksum
  uint32_t header_bytes = 0;  // split form: header bytes at the front of message.payload
};

UcxTransport::UcxTransport(const TransportOptions& options, const UcxTransportOptions& ucx_options)
    : options_(options),
      ucx_options_(ucx_options),
      inbox_(options.cluster_token),
      send_budget_nanos_(absl::ToInt64Nanoseconds(ucx_options.send_progress_budget)),  // Infinite: INT64_MAX
      receive_budget_nanos_(absl::ToInt64Nanoseconds(ucx_options.receive_progress_budget)) {}

void UcxTransport::SetBusyPoll(absl::Duration budget) {
  const int64_t nanos = absl::ToInt64Nanoseconds(budget);  // InfiniteDuration: INT64_MAX
  send_budget_nanos_.store(nanos, std::memory_order_relaxed);
  receive_budget_nanos_.store(nanos, std::memory_order_relaxed);
}

namespace {
absl::Duration FromNanos(int64_t nanos) {
  return nanos == std::numeric_limits<int64_t>::max() ? absl::InfiniteDuration() : absl::Nanoseconds(nanos);
}
}  // namespace

absl::Duration UcxTransport::SendBudget() const { return FromNanos(send_budget_nanos_.load(std::memory_order_relaxed)); }

absl::Duration UcxTransport::ReceiveBudget() const {
  return FromNanos(receive_budget_nanos_.load(std::memory_order_relaxed));
}

absl::StatusOr<std::unique_ptr<UcxTransport>> UcxTransport::Create(
    const TransportOptions& options, const UcxTransportOptions& ucx_options) {
  std::unique_ptr<UcxTransport> transport(new UcxTransport(options, ucx_options));
  MMX_ASSIGN_OR_RETURN(transport->worker_, UcxWorker::Create(ucx_options.net_devices));
  MMX_RETURN_IF_ERROR(
      transport->worker_->SetHandler(kUcxAmId, &UcxTransport::OnActiveMessage, transport.get()));
  MMX_RETURN_IF_ERROR(transport->worker_->SetHandler(
      kUcxAmIdSplit, &UcxTransport::OnSplitActiveMessage, transport.get()));
  MMX_RETURN_IF_ERROR(transport->worker_->Start());
  return transport;
}

UcxTransport::~UcxTransport() {
  if (worker_ == nullptr) return;  // Create failed before UCX was up
  Shutdown();
  // Push out what our completed eager sends left in UCX's queues, then let ucp_worker_destroy
  // drop the endpoints. NOTE: not ucp_ep_close_nbx per endpoint: in error mode NONE a flushing
  // close fails with "Endpoint timeout" (and UCX logs an ERROR) whenever the peer closed its
  // side first, which at cluster shutdown is every other time.
  {
    absl::MutexLock lock(&pending_mu_);
    ++pending_closes_;
  }
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  params.cb.send = &UcxTransport::OnCloseDone;
  params.user_data = this;
  void* request = ucp_worker_flush_nbx(worker_->worker(), &params);
  if (UCS_PTR_IS_PTR(request)) {
    worker_->Kick();
  } else {
    absl::MutexLock lock(&pending_mu_);
    --pending_closes_;
  }
  {
    // The progress thread is still running and completes the flushes and pulls.
    absl::MutexLock lock(&pending_mu_);
    auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(pending_mu_) {
      return pending_closes_ == 0 && rendezvous_in_flight_.load(std::memory_order_relaxed) == 0;
    };
    pending_mu_.AwaitWithTimeout(absl::Condition(&idle), absl::Seconds(1));
  }
  worker_->Stop();
  {
    absl::MutexLock lock(&mu_);
    endpoints_.clear();  // destroyed with the worker
  }
  worker_.reset();  // destroys the worker while inbox_ (used by late callbacks) is alive
}

std::string UcxTransport::LocalAddress() const {
  const std::string& ucx = worker_->address();
  std::string framed(kAddressFrameBytes, '\0');
  PutLE(framed.data(), kAddressMagic, 4);
  PutLE(framed.data() + 4, static_cast<uint32_t>(ucx.size()), 4);
  PutLE(framed.data() + 8, Crc32c(0, ucx.data(), ucx.size()), 4);
  return framed + ucx;
}

absl::Status UcxTransport::Connect(PeerId peer, const std::string& address) {
  const bool framed = address.size() > kAddressFrameBytes && GetLE(address.data(), 4) == kAddressMagic &&
                      GetLE(address.data() + 4, 4) == address.size() - kAddressFrameBytes &&
                      GetLE(address.data() + 8, 4) ==
                          Crc32c(0, address.data() + kAddressFrameBytes, address.size() - kAddressFrameBytes);
  if (!framed) {
    return absl::InvalidArgumentError(absl::StrCat("ucx transport: the address for peer ", peer, " (",
                                                   address.size(), " bytes) is not a data-plane address"));
  }
  absl::MutexLock lock(&mu_);
  if (shut_down_) return absl::CancelledError("ucx transport: shut down");
  ucp_ep_params_t params{};
  params.field_mask = UCP_EP_PARAM_FIELD_REMOTE_ADDRESS | UCP_EP_PARAM_FIELD_ERR_HANDLING_MODE;
  params.address = reinterpret_cast<const ucp_address_t*>(address.data() + kAddressFrameBytes);
  // NONE, not PEER: PEER would cost us shared memory on one host (see the header).
  params.err_mode = UCP_ERR_HANDLING_MODE_NONE;
  ucp_ep_h ep = nullptr;
  MMX_RETURN_IF_ERROR(UcsStatus(ucp_ep_create(worker_->worker(), &params, &ep),
                                absl::StrCat("ucp_ep_create for peer ", peer)));
  if (auto found = endpoints_.find(peer); found != endpoints_.end()) {
    CloseEndpoint(found->second);
    found->second = ep;
    ++peer_epoch_[peer];  // sends still waiting on the old endpoint give up
    WakeWaitingSends(peer);
  } else {
    endpoints_.emplace(peer, ep);
  }
  inbox_.mailbox().Connect(peer);
  return absl::OkStatus();
}

void UcxTransport::Disconnect(PeerId peer) {
  absl::MutexLock lock(&mu_);
  if (auto found = endpoints_.find(peer); found != endpoints_.end()) {
    CloseEndpoint(found->second);
    endpoints_.erase(found);
  }
  ++peer_epoch_[peer];
  WakeWaitingSends(peer);
  inbox_.mailbox().Disconnect(peer);
}

void UcxTransport::WakeWaitingSends(std::optional<PeerId> peer) {
  absl::MutexLock lock(&waiting_mu_);
  for (auto& [to, states] : waiting_) {
    if (peer.has_value() && to != *peer) continue;
    for (SendState* state : states) {
      absl::MutexLock state_lock(&state->mu);
      state->peer_gone = true;
    }
  }
}

void UcxTransport::CloseEndpoint(ucp_ep_h ep) {
  {
    absl::MutexLock lock(&pending_mu_);
    ++pending_closes_;
  }
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  params.cb.send = &UcxTransport::OnCloseDone;
  params.user_data = this;
  // Flush mode (no UCP_EP_CLOSE_FLAG_FORCE): FORCE is undefined behaviour in error mode NONE.
  void* request = ucp_ep_close_nbx(ep, &params);
  if (UCS_PTR_IS_PTR(request)) {
    worker_->Kick();  // the progress thread completes the flush and then calls OnCloseDone
    return;
  }
  // Closed at once, or failed (nothing left to wait for either way).
  absl::MutexLock lock(&pending_mu_);
  --pending_closes_;
}

void UcxTransport::OnCloseDone(void* request, ucs_status_t /*status*/, void* user_data) {
  auto* self = static_cast<UcxTransport*>(user_data);
  ucp_request_free(request);
  absl::MutexLock lock(&self->pending_mu_);
  --self->pending_closes_;
}

absl::Status UcxTransport::Send(PeerId peer, uint64_t key, const std::string& header,
                                const void* payload, size_t payload_bytes) {
  MMX_ASSIGN_OR_RETURN(PostedSend posted, Post(peer, key, header, payload, payload_bytes));
  return Wait(posted);
}

absl::Status UcxTransport::SendAll(const std::vector<Outgoing>& messages) {
  absl::Status first;
  std::vector<PostedSend> posted;
  posted.reserve(messages.size());
  for (const Outgoing& m : messages) {
    absl::StatusOr<PostedSend> p = Post(m.peer, m.key, m.header, m.payload, m.payload_bytes);
    if (!p.ok()) {
      first.Update(p.status());
    } else if (p->request != nullptr) {
      posted.push_back(*p);
    }
  }
  for (const PostedSend& p : posted) first.Update(Wait(p));
  return first;
}

absl::StatusOr<UcxTransport::PostedSend> UcxTransport::Post(PeerId peer, uint64_t key,
                                                                const std::string& header,
                                                                const void* payload, size_t payload_bytes) {
  Envelope envelope;
  envelope.sender = options_.self;
  envelope.cluster_token = options_.cluster_token;
  envelope.key = key;
  envelope.payload_bytes = payload_bytes;
  // NOTE: UCX 1.13 keeps pointers to the AM header and the iov array until the send completes
  // (there is no UCP_AM_SEND_FLAG_COPY_HEADER yet): `frame` and `iov` must outlive Wait.
  auto* state = new SendState;
  state->payload_bytes = payload_bytes;
  std::string& frame = state->frame;
  if (absl::Status st = EncodeFrame(envelope, header, &frame); !st.ok()) {
    delete state;
    return st;
  }
  const bool split = frame.size() > worker_->max_am_header();
  ucp_dt_iov_t* iov = state->iov;
  iov[0] = {frame.data() + kEnvelopeBytes, header.size()};
  iov[1] = {const_cast<void*>(payload), payload_bytes};

  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  params.cb.send = &UcxTransport::OnSendDone;
  params.user_data = state;
  if (split) {
    // Header and payload go as one message body, gathered without a copy.
    params.op_attr_mask |= UCP_OP_ATTR_FIELD_DATATYPE;
    params.datatype = ucp_dt_make_iov();
  }
  void* request = nullptr;
  uint64_t epoch = 0;
  {
    absl::ReaderMutexLock lock(&mu_);
    if (shut_down_) {
      delete state;
      return absl::CancelledError("ucx transport: shut down");
    }
    auto found = endpoints_.find(peer);
    if (found == endpoints_.end()) {
      delete state;
      return absl::UnavailableError(
          absl::StrCat("ucx transport: peer ", peer, " is not connected"));
    }
    if (auto e = peer_epoch_.find(peer); e != peer_epoch_.end()) epoch = e->second;
    if (split) {
      request = ucp_am_send_nbx(found->second, kUcxAmIdSplit, frame.data(), kEnvelopeBytes, iov,
                                payload_bytes == 0 ? 1 : 2, &params);
    } else {
      request = ucp_am_send_nbx(found->second, kUcxAmId, frame.data(), frame.size(), payload,
                                payload_bytes, &params);
    }
  }
  if (request == nullptr || UCS_PTR_IS_ERR(request)) {
    // Completed in place (eager, copied out) or failed: UCX never calls back.
    delete state;
    if (request == nullptr) return PostedSend{};
    return UcsStatus(UCS_PTR_STATUS(request), absl::StrCat("ucp_am_send_nbx to peer ", peer));
  }
  return PostedSend{request, state, peer, epoch};
}

bool UcxTransport::IsShutDown() const {
  absl::ReaderMutexLock lock(&mu_);
  return shut_down_;
}

bool UcxTransport::PeerStillConnected(PeerId peer, uint64_t epoch) const {
  absl::ReaderMutexLock lock(&mu_);
  if (shut_down_ || !endpoints_.contains(peer)) return false;
  auto e = peer_epoch_.find(peer);
  return (e == peer_epoch_.end() ? 0 : e->second) == epoch;
}

absl::Status UcxTransport::Wait(const PostedSend& posted) {
  if (posted.request == nullptr) return absl::OkStatus();  // completed in place (eager)
  void* const request = posted.request;
  SendState* const state = posted.state;
  const PeerId peer = posted.peer;
  const uint64_t epoch = posted.epoch;
  // Most rendezvous sends complete within tens of microseconds, sooner than two thread wakeups
  // (the progress thread's, then ours) would take; so progress here first. The progress thread
  // completes what is still pending after the budget.
  const bool done = worker_->DriveUntil([state] { return state->done_flag.load(std::memory_order_acquire); },
                                        SendDriveBudget(state->payload_bytes));
  std::optional<UcxWorker::Sleeper> sleeping;  // the wait below returns at once when done
  if (!done) {
    sleeping.emplace(*worker_);
    // The progress thread may be asleep on an fd that our request will not signal (e.g. a send
    // queued behind wireup): make it run progress once more before we sleep.
    worker_->Kick();
  }
  sends_waiting_.fetch_add(1);
  {
    absl::MutexLock lock(&waiting_mu_);
    waiting_[peer].insert(state);
  }
  // From here on Disconnect, a replacing Connect and Shutdown wake this wait; one that came
  // between the post and the registration is seen here.
  if (!PeerStillConnected(peer, epoch)) {
    absl::MutexLock lock(&state->mu);
    state->peer_gone = true;
  }
  absl::Status result;
  {
    absl::MutexLock lock(&state->mu);
    state->mu.Await(absl::Condition(state, &SendState::Finished));
    if (!state->done) {
      state->abandoned = true;  // the callback frees the request if it ever runs
      result = absl::UnavailableError(absl::StrCat("ucx transport: peer ", peer, " was disconnected during a send"));
    } else {
      result = UcsStatus(state->status, absl::StrCat("ucp_am_send_nbx to peer ", peer));
      ucp_request_free(request);
    }
  }
  {
    absl::MutexLock lock(&waiting_mu_);
    auto found = waiting_.find(peer);
    found->second.erase(state);
    if (found->second.empty()) waiting_.erase(found);
  }
  if (absl::IsUnavailable(result) && IsShutDown()) {
    result = absl::CancelledError(absl::StrCat("ucx transport: shut down during a send to peer ", peer));
  }
  sends_waiting_.fetch_sub(1);
  state->Release();
  return result;
}

void UcxTransport::OnSendDone(void* request, ucs_status_t status, void* user_data) {
  auto* state = static_cast<SendState*>(user_data);
  bool abandoned;
  {
    absl::MutexLock lock(&state->mu);
    abandoned = state->abandoned;
    state->status = status;
    state->done = true;
    state->done_flag.store(true, std::memory_order_release);
  }
  if (abandoned) ucp_request_free(request);
  state->Release();
}

ucs_status_t UcxTransport::OnActiveMessage(void* arg, const void* header, size_t header_length,
                                           void* data, size_t length,
                                           const ucp_am_recv_param_t* param) {
  auto* self = static_cast<UcxTransport*>(arg);
  // UCX leaves `header` undefined when header_length is 0; DecodeFrame then rejects the size.
  absl::string_view frame(header_length == 0 ? "" : static_cast<const char*>(header),
                          header_length);
  if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) == 0) {
    self->inbox_.Accept(frame, data, length);
    return UCS_OK;
  }
  absl::StatusOr<DecodedFrame> decoded = self->inbox_.Admit(frame, length);
  // Returning UCS_OK without receiving drops the rendezvous descriptor; the sender's request
  // completes normally, so a forger learns nothing.
  if (!decoded.ok()) return UCS_OK;
  auto* receive = new RendezvousReceive;
  receive->message.from = decoded->envelope.sender;
  receive->message.key = decoded->envelope.key;
  receive->message.header.assign(decoded->header.data(), decoded->header.size());
  self->StartRendezvous(data, length, receive);
  return UCS_OK;
}

ucs_status_t UcxTransport::OnSplitActiveMessage(void* arg, const void* header,
                                                size_t header_length, void* data, size_t length,
                                                const ucp_am_recv_param_t* param) {
  auto* self = static_cast<UcxTransport*>(arg);
  absl::string_view prefix(header_length == 0 ? "" : static_cast<const char*>(header),
                           header_length);
  absl::StatusOr<Envelope> envelope = self->inbox_.AdmitPrefix(prefix, length);
  if (!envelope.ok()) return UCS_OK;  // dropped and counted; see OnActiveMessage
  if ((param->recv_attr & UCP_AM_RECV_ATTR_FLAG_RNDV) == 0) {
    // AdmitPrefix checked header_bytes + payload_bytes == length.
    const char* bytes = static_cast<const char*>(data);
    absl::string_view caller_header(bytes, envelope->header_bytes);
    if (!self->inbox_.VerifyHeader(prefix, caller_header).ok()) return UCS_OK;
    Message message;
    message.from = envelope->sender;
    message.key = envelope->key;
    message.header.assign(caller_header.data(), caller_header.size());
    const auto* payload = reinterpret_cast<const uint8_t*>(bytes) + envelope->header_bytes;
    message.payload.assign(payload, payload + envelope->payload_bytes);
    self->inbox_.Deliver(std::move(message));
    return UCS_OK;
  }
  auto* receive = new RendezvousReceive;
  receive->message.from = envelope->sender;
  receive->message.key = envelope->key;
  receive->split = true;
  receive->prefix.assign(prefix.data(), prefix.size());
  receive->header_bytes = envelope->header_bytes;
  self->StartRendezvous(data, length, receive);
  return UCS_OK;
}

void UcxTransport::StartRendezvous(void* data_descriptor, size_t length,
                                   RendezvousReceive* receive) {
  receive->transport = this;
  receive->message.payload.resize(length);  // uninitialized, and a reused buffer (payload.h)
  {
    absl::MutexLock lock(&pending_mu_);
    rendezvous_in_flight_.fetch_add(1, std::memory_order_relaxed);
  }
  ucp_request_param_t params{};
  params.op_attr_mask = UCP_OP_ATTR_FIELD_CALLBACK | UCP_OP_ATTR_FIELD_USER_DATA;
  params.cb.recv_am = &UcxTransport::OnRendezvousDone;
  params.user_data = receive;
  void* request = ucp_am_recv_data_nbx(worker_->worker(), data_descriptor,
                                       receive->message.payload.data(), length, &params);
  if (UCS_PTR_IS_PTR(request)) return;  // OnRendezvousDone delivers
  // Completed in place (UCX does not call the callback then), or failed.
  OnRendezvousDone(nullptr, UCS_PTR_STATUS(request), length, receive);
}

void UcxTransport::OnRendezvousDone(void* request, ucs_status_t status, size_t length,
                                    void* user_data) {
  auto* receive = static_cast<RendezvousReceive*>(user_data);
  UcxTransport* self = receive->transport;
  Message& message = receive->message;
  if (request != nullptr) ucp_request_free(request);
  if (status != UCS_OK) {
    self->inbox_.CountDrop(
        UcsStatus(status, absl::StrCat("ucp_am_recv_data_nbx from peer ", message.from)));
  } else if (length != message.payload.size()) {
    self->inbox_.CountDrop(absl::DataLossError(
        absl::StrCat("ucx transport: rendezvous from peer ", message.from, " delivered ", length,
                     " of ", message.payload.size(), " bytes")));
  } else if (!receive->split) {
    self->inbox_.Deliver(std::move(message));
  } else {
    const auto header_end = message.payload.begin() + receive->header_bytes;
    absl::string_view caller_header(reinterpret_cast<const char*>(message.payload.data()),
                                    receive->header_bytes);
    if (self->inbox_.VerifyHeader(receive->prefix, caller_header).ok()) {
      message.header.assign(caller_header.data(), caller_header.size());
      message.payload.erase(message.payload.begin(), header_end);  // one memmove, rare path
      self->inbox_.Deliver(std::move(message));
    }
  }
  delete receive;
  absl::MutexLock lock(&self->pending_mu_);
  self->rendezvous_in_flight_.fetch_sub(1, std::memory_order_relaxed);
}

absl::Duration UcxTransport::SendDriveBudget(size_t payload_bytes) const {
  const absl::Duration budget = SendBudget();
  if (budget == absl::ZeroDuration()) return budget;
  const absl::Duration transfer = std::min(kMaxTransferDrive, absl::Seconds(payload_bytes / kDriveBytesPerSecond));
  return std::max(budget, transfer);
}

bool UcxTransport::DriveForReceive(absl::FunctionRef<bool()> arrived, absl::Duration timeout) {
  const absl::Duration budget = std::min(timeout, ReceiveBudget());
  if (budget == absl::ZeroDuration()) return worker_->DriveUntil(arrived, budget);
  // A rendezvous being pulled in (ours, most likely) arrives only as progress runs.
  return worker_->DriveUntil(
      arrived, budget, [this] { return rendezvous_in_flight_.load(std::memory_order_relaxed) > 0; },
      std::min(timeout - budget, kMaxTransferDrive));
}

absl::StatusOr<Message> UcxTransport::Receive(PeerId peer, uint64_t key, absl::Duration timeout,
                                                std::stop_token stop) {
  const Mailbox& mailbox = inbox_.mailbox();
  if (DriveForReceive([&] { return stop.stop_requested() || mailbox.CanReceiveNow(peer, key); }, timeout)) {
    return inbox_.mailbox().Receive(peer, key, timeout, std::move(stop));  // at once, unless another receiver took it
  }
  UcxWorker::Sleeper sleeping(*worker_);
  return inbox_.mailbox().Receive(peer, key, timeout, std::move(stop));
}

absl::StatusOr<Message> UcxTransport::ReceiveAny(uint64_t key, absl::Duration timeout, std::stop_token stop) {
  const Mailbox& mailbox = inbox_.mailbox();
  if (DriveForReceive([&] { return stop.stop_requested() || mailbox.CanReceiveAnyNow(key); }, timeout)) {
    return inbox_.mailbox().ReceiveAny(key, timeout, std::move(stop));  // at once, unless another receiver took it
  }
  UcxWorker::Sleeper sleeping(*worker_);
  return inbox_.mailbox().ReceiveAny(key, timeout, std::move(stop));
}

void UcxTransport::Shutdown() {
  absl::MutexLock lock(&mu_);
  shut_down_ = true;
  WakeWaitingSends(std::nullopt);
  inbox_.mailbox().Shutdown();
}

absl::StatusOr<std::string> UcxTransport::DescribeEndpoint(PeerId peer) const {
  absl::ReaderMutexLock lock(&mu_);
  auto found = endpoints_.find(peer);
  if (found == endpoints_.end()) {
    return absl::NotFoundError(absl::StrCat("ucx transport: peer ", peer, " is not connected"));
  }
  char* text = nullptr;
  size_t size = 0;
  FILE* stream = open_memstream(&text, &size);
  if (stream == nullptr) return absl::InternalError("ucx transport: open_memstream failed");
  ucp_ep_print_info(found->second, stream);
  std::fclose(stream);
  std::string description(text, size);
  std::free(text);
  return description;
}

size_t UcxTransport::max_inline_header_bytes() const {
  const size_t limit = worker_->max_am_header();
  return limit <= kEnvelopeBytes ? 0 : limit - kEnvelopeBytes;
}

}  // namespace mmx::transport
