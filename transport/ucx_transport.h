// UcxTransport: Transport over UCX active messages (RDMA, shared memory or TCP, whatever UCX
// finds; UCX_TLS / UCX_NET_DEVICES in the environment steer it, read by UCX itself).
//
// Wire: one active message per Send, in one of two forms (docs/protocol.md, "Transport
// envelope"):
//   kUcxAmId:      AM header = envelope frame (prefix + caller header), AM data = payload.
//   kUcxAmIdSplit: AM header = the 48-byte prefix alone, AM data = caller header + payload.
//                  Used when the frame exceeds UCX's AM header limit (about 8 KiB in 1.13,
//                  see max_inline_header_bytes()), so callers get the envelope's 64 KiB.
// Small messages arrive eagerly and are copied out in the handler; large ones
// (UCP_AM_RECV_ATTR_FLAG_RNDV) are admitted on their prefix, then pulled with
// ucp_am_recv_data_nbx into the message's own buffer and delivered when that completes.
// Nothing is allocated for a message before its prefix has passed every check in inbox.h.
//
// Addresses are out of band: LocalAddress() is the worker address, which the coordinator
// passes to peers; Connect() makes an endpoint from it (UCP_EP_PARAM_FIELD_REMOTE_ADDRESS).
// UCX's parser takes no length and trusts its input, so the address travels framed ("MMXA",
// length, CRC-32C, then UCX's bytes) and Connect checks the frame before UCX sees it: garbage
// or a truncated address is InvalidArgument, not a read past the buffer. A well-formed forged
// address is still trusted: addresses come from the coordinator over the control plane.
//
// Error mode NONE: with UCP_ERR_HANDLING_MODE_PEER, UCX 1.13 drops the shared-memory transports
// and talks TCP even between processes on one host (BUILD.md §5), which costs 2-6x on local
// paths. The price of NONE: UCX does not report a dead peer. The control plane detects failed
// workers and calls Disconnect(); a Send whose rendezvous peer died mid-transfer may not return.
//
// Thread safety: every method may be called from any thread, except that the destructor must
// not run concurrently with anything else.
#pragma once

#include <ucp/api/ucp.h>

#include <cstddef>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "transport/inbox.h"
#include "transport/transport.h"
#include "transport/ucx_worker.h"

namespace mmx::transport {

inline constexpr unsigned kUcxAmId = 17;
inline constexpr unsigned kUcxAmIdSplit = 18;

struct UcxTransportOptions {
  // How long Send() drives ucp_worker_progress itself, on the calling thread, while a posted
  // message has not completed (rendezvous, or a full send queue), before it hands progress to
  // the progress thread and sleeps on a notification from the UCX send callback. Zero: sleep
  // at once (two thread wakeups more per rendezvous message, no CPU spent waiting).
  // absl::InfiniteDuration(): never sleep (spins while the peer works). Measurements and the
  // reasons for the default are in docs/protocol.md ("Send completion").
  absl::Duration send_progress_budget = absl::Microseconds(50);
  // How long Receive()/ReceiveAny() drive ucp_worker_progress on the calling thread, waiting for
  // their message, before they sleep until the progress thread delivers it. A message that
  // arrives within the budget lands on the receiving thread with no thread wakeup (tens of
  // microseconds on a VM); one that does not costs the budget in CPU. Zero: sleep at once.
  // The wait may outlast `timeout` by up to this budget.
  absl::Duration receive_progress_budget = absl::Microseconds(50);
  // The network devices UCX may use (UCX_NET_DEVICES syntax; net_interface.h makes it), so
  // the data plane listens only where the cluster is. "" = every device; the environment's
  // UCX_NET_DEVICES wins.
  std::string net_devices;
};

class UcxTransport final : public Transport {
 public:
  // Creates the UCP context and worker and starts the progress thread. Errors from UCX come
  // through UcsStatus (ucs_status.h), e.g. Unavailable when no transport carries active
  // messages. NOTE: fork() only before the first Create in a process.
  static absl::StatusOr<std::unique_ptr<UcxTransport>> Create(
      const TransportOptions& options, const UcxTransportOptions& ucx_options = {});
  // Shuts down, flushes the worker (waiting up to a second), stops the progress thread and
  // releases UCX, endpoints included.
  ~UcxTransport() override;

  std::string LocalAddress() const override;
  // Creates the endpoint; replaces (and closes) an existing one for `peer`. InvalidArgument for
  // an address that is not a framed one of LocalAddress(); UCX failures via UcsStatus (Unavailable when unreachable); Cancelled
  // after Shutdown(). NOTE: success does not prove the peer is alive: UCX connects lazily.
  absl::Status Connect(PeerId peer, const std::string& address) override;
  // Closes the endpoint (flush, in the background) and fails receivers waiting on `peer`. If
  // the peer's side is already gone, UCX logs "error during flush: Endpoint timeout" (error
  // mode NONE has no quieter way); nothing else is affected.
  void Disconnect(PeerId peer) override;
  // Blocks until UCX no longer needs `payload` (eager: copied out; rendezvous: pulled by the
  // peer), or until `peer` is disconnected meanwhile (Unavailable: a dead peer never pulls) or
  // the transport shut down (Cancelled); either wakes the wait at once. Unavailable if `peer` is
  // not connected; InvalidArgument if the header or payload exceed the envelope's limits;
  // Cancelled after Shutdown(); UCX failures via UcsStatus.
  absl::Status Send(PeerId peer, uint64_t key, const std::string& header, const void* payload,
                    size_t payload_bytes) override;
  absl::Status SendAll(const std::vector<Outgoing>& messages) override;
  void SetBusyPoll(absl::Duration budget) override;

  // A send posted and not yet waited for: `request` is null when it completed in place.
  struct SendState;
  struct PostedSend {
    void* request = nullptr;
    SendState* state = nullptr;
    PeerId peer = 0;
    uint64_t epoch = 0;
  };
  // Send in two halves, for a sender that keeps a window sliding on one thread (post the next
  // as the oldest completes; SendAll waits for its whole batch): Post returns at once, Wait
  // returns as Send would. Every posted send must be waited for exactly once, and its header
  // and payload left untouched until then. Wait gives up (Unavailable) if the peer is
  // disconnected or reconnected meanwhile (its endpoint epoch moved past the post's).
  absl::StatusOr<PostedSend> Post(PeerId peer, uint64_t key, const std::string& header, const void* payload,
                                  size_t payload_bytes);
  absl::Status Wait(const PostedSend& posted);
  using Transport::Receive;
  using Transport::ReceiveAny;
  absl::StatusOr<Message> Receive(PeerId peer, uint64_t key, absl::Duration timeout,
                                  std::stop_token stop) override;
  absl::StatusOr<Message> ReceiveAny(uint64_t key, absl::Duration timeout, std::stop_token stop) override;
  void Shutdown() override;
  uint64_t dropped_messages() const override { return inbox_.dropped(); }
  // Sends waiting for their completion right now (diagnostics and tests).
  int sends_waiting() const { return sends_waiting_.load(); }

  // Why the last message was dropped (OK if none was): diagnostics and tests.
  absl::Status last_drop() const { return inbox_.last_drop(); }
  // UCX's description of the endpoint to `peer` (lanes, transports, devices): ucp_ep_print_info.
  // NotFound if `peer` is not connected.
  absl::StatusOr<std::string> DescribeEndpoint(PeerId peer) const;
  // Largest caller header that still travels in the AM header (kUcxAmId): UCX's AM header
  // limit less the envelope prefix. Larger headers (up to kMaxHeaderBytes) go split.
  size_t max_inline_header_bytes() const;
  // Wakeups of the progress thread for events or kicks so far (ucx_worker.h).
  uint64_t progress_wakeups() const { return worker_->num_wakeups(); }

 private:
  struct RendezvousReceive;
  UcxTransport(const TransportOptions& options, const UcxTransportOptions& ucx_options);

  static ucs_status_t OnActiveMessage(void* arg, const void* header, size_t header_length,
                                      void* data, size_t length, const ucp_am_recv_param_t* param);
  static ucs_status_t OnSplitActiveMessage(void* arg, const void* header, size_t header_length,
                                           void* data, size_t length,
                                           const ucp_am_recv_param_t* param);
  // Pulls a rendezvous message's data into receive->message.payload; delivers on completion.
  void StartRendezvous(void* data_descriptor, size_t length, RendezvousReceive* receive);
  static void OnSendDone(void* request, ucs_status_t status, void* user_data);
  static void OnRendezvousDone(void* request, ucs_status_t status, size_t length,
                               void* user_data);
  static void OnCloseDone(void* request, ucs_status_t status, void* user_data);
  // Starts closing `ep` in the background (flush mode, as error mode NONE requires).
  void CloseEndpoint(ucp_ep_h ep);
  bool PeerStillConnected(PeerId peer, uint64_t epoch) const;
  bool IsShutDown() const;
  // Wakes the sends waiting on `peer` (all peers: nullopt), which then give up.
  void WakeWaitingSends(std::optional<PeerId> peer) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TransportOptions options_;
  const UcxTransportOptions ucx_options_;
  Inbox inbox_;
  std::atomic<int> sends_waiting_{0};
  std::unique_ptr<UcxWorker> worker_;

  // Send holds it shared while it posts to an endpoint, so Disconnect cannot close that
  // endpoint underneath it.
  mutable absl::Mutex mu_;
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  absl::flat_hash_map<PeerId, ucp_ep_h> endpoints_ ABSL_GUARDED_BY(mu_);
  // Bumped on every Disconnect or replacing Connect of a peer: waiting sends to it give up.
  absl::flat_hash_map<PeerId, uint64_t> peer_epoch_ ABSL_GUARDED_BY(mu_);
  // Sends waiting for completion, by peer, so that losing the peer wakes them (a dead peer
  // never completes them). Taken after mu_, before a SendState's own mutex.
  absl::Mutex waiting_mu_ ABSL_ACQUIRED_AFTER(mu_);
  absl::flat_hash_map<PeerId, absl::flat_hash_set<SendState*>> waiting_ ABSL_GUARDED_BY(waiting_mu_);

  // Operations still owned by UCX callbacks; the destructor waits for them.
  absl::Mutex pending_mu_;
  int pending_closes_ ABSL_GUARDED_BY(pending_mu_) = 0;  // endpoint closes and worker flushes
  // Rendezvous receives UCX is pulling in: changed under pending_mu_ (the destructor awaits 0),
  // read without it by receivers deciding whether to drive on (DriveForReceive).
  std::atomic<int> rendezvous_in_flight_{0};
  // The progress budgets (UcxTransportOptions, then SetBusyPoll), in nanoseconds (INT64_MAX:
  // infinite).
  std::atomic<int64_t> send_budget_nanos_{0};
  std::atomic<int64_t> receive_budget_nanos_{0};
  absl::Duration SendBudget() const;
  absl::Duration ReceiveBudget() const;

  // How long a thread that drives while it waits keeps driving: its budget, and on while a
  // transfer it waits on moves only as progress runs (a large send: as long as its bytes take at
  // kDriveBytesPerSecond; a receive: while a rendezvous is being pulled in), at most
  // kMaxTransferDrive. Over TCP a 1 MiB transfer is some sixteen socket reads or writes; left
  // to the progress thread, each costs a wakeup and a re-arm. Zero budget: zero.
  absl::Duration SendDriveBudget(size_t payload_bytes) const;
  static constexpr double kDriveBytesPerSecond = 1e9;
  static constexpr absl::Duration kMaxTransferDrive = absl::Milliseconds(1);
  // Receive/ReceiveAny's drive: true when `arrived` came true on this thread.
  bool DriveForReceive(absl::FunctionRef<bool()> arrived, absl::Duration timeout);
};

}  // namespace mmx::transport
