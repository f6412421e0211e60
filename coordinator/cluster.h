// Cluster: the coordinator's view of its workers. Each shard config entry is a slot that one
// live worker session claims by name. The cluster is ready when every slot's worker has loaded
// its shard (with the coordinator's checkpoint fingerprint) and applied the current peer table.
// Losing a worker makes it not ready and bumps the epoch (in-flight steps fail); when the
// worker (or a restarted one with the same name) is back, a new peer table goes out.
//
// Thread-safe: control-plane sessions, the scheduler and the API service all call in.
#pragma once

#include <cstdint>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "mmx/v1/control.pb.h"
#include "mmx/v1/inference.pb.h"
#include "model/config.h"
#include "model/tensor_digests.h"
#include "plan/cluster_spec.h"
#include "plan/model_sizes.h"
#include "plan/shard_config.h"
#include "transport/transport.h"

namespace mmx::coordinator {

// Sends a message down one worker's session stream (thread-safe; false once the stream is gone).
using SessionWriter = std::function<bool(const v1::CoordinatorMessage&)>;

class Cluster {
 public:
  // `transport` is the coordinator's data-plane endpoint, peer id 0.
  Cluster(plan::ShardConfig shard, model::ModelConfig config, std::string fingerprint,
          transport::Transport* transport, transport::ClusterToken cluster_token);

  // Plans from live workers: waits until `expect_workers` workers (any distinct names) have
  // registered, plans the model on the capabilities they reported (plan/planner.h), logs the
  // shard config it chose, and only then answers their registrations.
  struct LivePlanning {
    std::string model_dir;
    int expect_workers = 0;
    plan::ServingSpec serving;
    double network_gbps = 10;  // the link between workers (not measured yet)
  };
  Cluster(LivePlanning planning, model::ModelConfig config, std::string fingerprint,
          transport::Transport* transport, transport::ClusterToken cluster_token);

  // Where the cluster logs workers joining, loading, failing and leaving (default: stderr, each
  // line prefixed "mmx-coord: "). Set before the first session.
  void set_log(LogSink log) { log_ = std::move(log); }
  // A worker silent this long is lost (--heartbeat-timeout); sent to workers in their Assignment,
  // so they hold the coordinator to the same. Set before the first session.
  void set_heartbeat_timeout(absl::Duration timeout) { heartbeat_timeout_ = timeout; }
  absl::Duration heartbeat_timeout() const { return heartbeat_timeout_; }
  // The SHA-256 of every tensor of the coordinator's checkpoint (model/tensor_digests.h): a
  // worker whose loaded tensors differ is refused naming the first, whatever its headers say.
  // Empty (the default) checks headers only. Set before the first session.
  void set_tensor_digests(model::TensorDigests digests) { tensor_digests_ = std::move(digests); }

  // A worker's session opened with Register. Returns the first message to send: its Assignment,
  // or Standby for a standby (Register.standby, or a worker whose entry a standby took over
  // meanwhile) when no lost entry waits for it. Or InvalidArgument (unknown name, or bad
  // protocol version) / AlreadyExists (the name is held by a live session), whose message the
  // worker prints before exiting. With live planning it blocks until the plan exists
  // (ResourceExhausted if the workers cannot hold the model).
  // `close` ends the session from this side (its worker then registers again): the loser of a
  // race for a lost entry. Forgotten when the session ends.
  absl::StatusOr<v1::CoordinatorMessage> Register(const v1::Register& request, SessionWriter writer,
                                                  uint64_t* session_id, std::function<void()> close = nullptr);
  void OnProgress(uint64_t session_id, int64_t done, int64_t total);
  // FailedPrecondition if the worker's checkpoint fingerprint differs (the session is then
  // rejected and ends).
  absl::Status OnReady(uint64_t session_id, const v1::Ready& ready);
  void OnPeersApplied(uint64_t session_id, uint64_t version);
  void OnFailed(uint64_t session_id, const std::string& message);
  // Nothing was heard from the worker for `silence` (frozen, or its link is down): the session
  // is about to be ended from this side; the worker is marked lost with that reason.
  void OnSilent(uint64_t session_id, absl::Duration silence);
  // The worker asks to stop (SIGTERM): the cluster stops being ready (no new step starts) and
  // the worker is dismissed at the next Quiescent, once the step in flight is done.
  void OnLeaving(uint64_t session_id);
  // The scheduler has no step in flight: workers waiting to leave are dismissed now (their
  // session then ends, and the loss is handled as any: a standby or a restart takes the entry,
  // the paused sequences are replayed there).
  void Quiescent();
  // The session stream ended (the worker exited, crashed or was cut off).
  void OnSessionEnded(uint64_t session_id);
  // A step failed on the data plane (a peer unreachable, a step that never came back) while
  // every worker still holds its session: the sequences' state may be half-updated. Starts a
  // new epoch with the same workers (a new peer table: every worker drops its sequences), so the
  // scheduler replays them. `why` is reported as the cause.
  void ResetSequences(const std::string& why);

  // Calls `on_change(ready, epoch)` whenever readiness or the epoch changes (a worker lost or
  // failed, or the cluster became ready). It runs under the cluster's lock: it must not call
  // the cluster.
  // Returns an id for Unsubscribe, which a listener whose owner dies first must call.
  using ChangeListener = std::function<void(bool ready, uint64_t epoch)>;
  uint64_t Subscribe(ChangeListener on_change);
  void Unsubscribe(uint64_t id);

  bool ready() const;
  // Bumped whenever a worker holding sequence state (or the only copy of some experts) is lost:
  // a step started in an older epoch is void, and its sequences' state is gone. Peer tables and
  // steps carry it (the sequence epoch).
  uint64_t epoch() const;
  // The last worker lost or failed, and why ("worker 'b' lost: ..."); "" if none yet.
  std::string last_loss() const;
  // Waits until ready or the timeout passes; returns ready().
  bool WaitReady(absl::Duration timeout) const;
  // Why the cluster is not ready, for UNAVAILABLE messages ("worker 'b' is loading (45%)").
  std::string NotReadyReason() const;
  // ready(), epoch(), last_loss() and (when not ready) NotReadyReason() read at one moment: a
  // loss between separate reads could pair "ready" with the epoch the loss began.
  struct Moment {
    bool ready = false;
    uint64_t epoch = 0;
    std::string last_loss;
    std::string not_ready_reason;
  };
  Moment Now() const;

  v1::ClusterStatus Status() const;
  // Ids the tail may sample ([begin, end) pairs), sent in every Assignment. Set before serving.
  void SetSampleableRanges(std::vector<int32_t> ranges);
  // The scheduler's automatic counts, chosen when the cluster became ready (core_sharing.h
  // ChooseOverlap): micro-batches per step, 2 where a stage has experts on other workers, else 1;
  // steps in flight per attention group, one per stage of the group; both 1 when there is one
  // worker or the workers share a host's cores.
  int AutomaticMicroBatches() const;
  int AutomaticStepsInFlight() const;
  // The sequence-state bytes the scheduler holds for running requests on each attention stage
  // (by entry name): what a standby taking a stage over must have room for, with its weights.
  void SetReservedState(std::map<std::string, int64_t> bytes);
  // Each attention stage's layers and the memory it reported for sequence state (split among
  // the workers of its host), for admission control. Valid while ready().
  struct Stage {
    std::string worker;
    int begin = 0, end = 0;
    int64_t state_memory_bytes = 0;
    std::string group;  // its attention group ("": the default)
  };
  std::vector<Stage> Stages() const;
  // The name of the worker with data-plane id `peer` ("" if none).
  std::string WorkerName(transport::PeerId peer) const;
  const model::ModelConfig& config() const { return config_; }
  // The shard config (empty until planned, with live planning).
  plan::ShardConfig shard() const;
  // The attention groups (plan/shard_config.h AttentionGroups, in shard order; "" alone for the
  // default group). Each has its own head; the scheduler keeps each group's waves apart.
  std::vector<std::string> Groups() const;
  // The worker holding `group`'s embedding, where its steps go (the only head when the config has
  // one group, whatever its name).
  transport::PeerId head(const std::string& group = "") const;

 private:
  struct Slot {
    const plan::WorkerShard* entry = nullptr;
    transport::PeerId peer_id = 0;
    uint64_t session_id = 0;  // 0 = no live session
    SessionWriter writer;
    v1::WorkerState state = v1::WORKER_STATE_UNSPECIFIED;
    int64_t bytes_done = 0, bytes_total = 0;
    std::string message;
    std::string end_reason;  // why the session is ending (OnSilent, OnLeaving), "" otherwise
    bool leaving = false;    // asked to stop; dismissed once no step is in flight
    bool dismissed = false;
    std::string data_address;
    uint64_t applied_version = 0;
    // Lost, but every expert it held is held by a live worker: the cluster serves without it
    // (no new epoch), and takes it back when it returns, until then it is out of peer tables.
    bool excused = false;
    uint64_t sent_version = 0;      // the newest peer table sent to it
    std::string connected_address;  // what the coordinator's transport is connected to
    v1::Register info;              // of the process holding it (a standby's own name, device, memory)
    // A standby loading this entry while its worker, stopping, still serves it (a hand-over):
    // when it is ready it takes the entry and the old worker is dismissed.
    struct Handover {
      uint64_t session_id = 0;
      SessionWriter writer;
      v1::Register info;
      int64_t bytes_done = 0, bytes_total = 0;
      // A restart racing the standby that is loading this lost entry (not a stopping worker's
      // hand-over): whichever is ready first takes it, the other is sent back to register.
      bool race = false;
    };
    std::optional<Handover> handover;
    int64_t state_memory_bytes = 0;
  };
  // A worker registered with --standby, holding nothing yet.
  struct StandbyWorker {
    uint64_t session_id = 0;
    SessionWriter writer;
    v1::Register info;
  };
  Slot* FindSession(uint64_t session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A live, ready worker that was excused (routed around) and has come back.
  static bool Returning(const Slot& s) {
    return s.excused && s.session_id != 0 && s.state == v1::WORKER_STATE_READY;
  }
  // Sends held_table_ to the workers that have not had it, once every returning worker applied
  // it; then takes the returning workers back once every ready worker applied it.
  void SendHeldTable() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::Assignment MakeAssignment(const Slot& slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a new session in `slot` (loading): the worker named by its entry, or a standby.
  void Claim(Slot& slot, uint64_t session_id, SessionWriter writer, const v1::Register& info)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // cluster_standby.cc: the standby pool.
  absl::StatusOr<v1::CoordinatorMessage> RegisterStandby(const v1::Register& request, SessionWriter writer,
                                                         uint64_t* session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether a standby can take `slot`: same device kind, memory for its weights and the state
  // the scheduler holds on it.
  bool Fits(const v1::Register& standby, const Slot& slot) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Gives lost entries to fitting standbys (first lost entry first), sending their Assignments.
  void AssignStandbys() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Ends a standby's registration if `session_id` is one; returns whether it was.
  bool DropStandby(uint64_t session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A stopping worker's entry to a fitting standby, loading while the worker still serves;
  // false if no standby fits.
  bool StartHandover(Slot& slot) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The slot whose hand-over session is `session_id`, or null.
  Slot* FindHandover(uint64_t session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The hand-over's standby is loaded: it takes the entry (a new epoch: the old worker's
  // sequences are replayed on it) and the old worker is dismissed.
  absl::Status CompleteHandover(Slot& slot, const v1::Ready& ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new sequence epoch with the workers as they are: every sequence is void, a new peer table
  // goes out (when every worker is ready), and the scheduler replays.
  void StartNewEpoch() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The slot's hand-over process, loaded (`ready`), becomes the slot's worker.
  void ClaimFromHandover(Slot& slot, const v1::Ready& ready) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<v1::CoordinatorMessage> RegisterLocked(const v1::Register& request, SessionWriter writer,
                                                        uint64_t* session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string NotReadyReasonLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // cluster_checkpoint.cc: OK when `ready` reports the coordinator's checkpoint: its fingerprint
  // (config.json, headers) and, with tensor digests set, the data of every tensor it loaded.
  absl::Status SameCheckpoint(const v1::Ready& ready) const;
  // Ends a session from this side, if it has a closer.
  void CloseSession(uint64_t session_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SetShard(plan::ShardConfig shard) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Plans on the pending registrations (live planning); sets planned_ or plan_error_.
  void PlanFromPendingWorkers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybePublishPeers() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UpdateReady() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void NotifyChange() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::PeerTable BuildPeerTable() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether every expert `lost` held is held by another live, serving worker that is not stopping.
  bool ExpertsHeldElsewhere(const Slot& lost) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SendPeerLost(const Slot& lost, bool replicated) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  plan::ShardConfig shard_ ABSL_GUARDED_BY(mu_);
  const model::ModelConfig config_;
  const plan::ModelSizes sizes_;
  const std::string fingerprint_;
  model::TensorDigests tensor_digests_;  // cluster_checkpoint.cc
  transport::Transport* const transport_;
  const transport::ClusterToken cluster_token_;
  absl::Duration heartbeat_timeout_ = absl::Seconds(10);
  LogSink log_ = [](const std::string& line) { std::fprintf(stderr, "mmx-coord: %s\n", line.c_str()); };
  std::map<std::string, transport::PeerId> heads_ ABSL_GUARDED_BY(mu_);  // by attention group

  mutable absl::Mutex mu_;
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  std::vector<StandbyWorker> standbys_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int64_t> reserved_state_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, std::function<void()>> closers_ ABSL_GUARDED_BY(mu_);
  // Live planning: registrations wait here until the plan exists.
  std::optional<LivePlanning> planning_;
  std::vector<v1::Register> pending_ ABSL_GUARDED_BY(mu_);
  bool planned_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status plan_error_ ABSL_GUARDED_BY(mu_);
  uint64_t next_session_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t table_version_ ABSL_GUARDED_BY(mu_) = 0;
  bool published_ ABSL_GUARDED_BY(mu_) = false;
  // A table that brings back excused workers goes to them first and to the others once they
  // applied it (SendHeldTable): a stage routes to a host as soon as it applies the table that
  // lists it, and the host drops dispatches from stages it has not connected yet.
  std::optional<v1::CoordinatorMessage> held_table_ ABSL_GUARDED_BY(mu_);
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  int automatic_micro_batches_ ABSL_GUARDED_BY(mu_) = 2;
  int automatic_steps_in_flight_ ABSL_GUARDED_BY(mu_) = 1;
  std::vector<int32_t> sampleable_ranges_ ABSL_GUARDED_BY(mu_);
  uint64_t epoch_ ABSL_GUARDED_BY(mu_) = 1;
  // The first peer table of the current epoch (a worker serving an older one is not ready).
  uint64_t epoch_first_version_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t published_epoch_ ABSL_GUARDED_BY(mu_) = 0;
  std::string last_loss_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, ChangeListener> listeners_ ABSL_GUARDED_BY(mu_);
  uint64_t next_listener_ ABSL_GUARDED_BY(mu_) = 1;
};

// Human-readable roles of a shard entry ("embedding", "attention[0,4)", ...).
std::vector<std::string> DescribeRoles(const plan::WorkerShard& worker);

}  // namespace mmx::coordinator
