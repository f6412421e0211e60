#include "worker/worker_runtime.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "model/checkpoint_fingerprint.h"
#include "model/device_spec.h"
#include "model/stage_compute.h"
#include "parallel/stage_compute_factory.h"
#include "transport/message_keys.h"
#include "worker/heartbeats.h"
#include "worker/host_info.h"
#include "worker/progress.h"
#include "worker/routes.h"
#include "worker/expert_host.h"
#include "worker/stage_executor.h"
#include "worker/step_inbox.h"

namespace mmx::worker {

using transport::InboxKey;
using transport::MessageKind;
namespace {

// Marks the status ServeSession returns when the session ended after the worker was serving.
constexpr char kCoordinatorLostType[] = "type.mmx/worker.CoordinatorLost";

constexpr char kDismissedType[] = "type.mmx/worker.Dismissed";

absl::Status Dismissed(const std::string& message) {
  absl::Status status = absl::CancelledError(absl::StrCat("dismissed by the coordinator: ", message));
  status.SetPayload(kDismissedType, absl::Cord());
  return status;
}

absl::Status CoordinatorLost() {
  absl::Status status = absl::UnavailableError("lost the coordinator (session ended)");
  status.SetPayload(kCoordinatorLostType, absl::Cord());
  return status;
}

// Tells the coordinator why this worker cannot go on, and returns the same status.
absl::Status ReportFailure(ControlSession& session, const absl::Status& status) {
  v1::WorkerMessage failed;
  failed.mutable_failed()->set_message(std::string(status.message()));
  session.Write(failed);
  return status;
}

// The executor serving the current peer table; replaced (with fresh sequence state) by a new table.
class Serving {
 public:
  // The old executor is aborted: a step it is still running belongs to a voided table, and
  // must not wait for replies from peers of that table (a restarted peer with the same id never
  // sends them) while the new table's steps queue behind it.
  void Set(std::shared_ptr<StageExecutor> executor) {
    std::lock_guard<std::mutex> lock(mu_);
    if (executor_) executor_->Abort();
    executor_ = std::move(executor);
  }
  std::shared_ptr<StageExecutor> Get() {
    std::lock_guard<std::mutex> lock(mu_);
    return executor_;
  }

 private:
  std::mutex mu_;
  std::shared_ptr<StageExecutor> executor_;
};

v1::WorkerMessage MakeRegister(const WorkerOptions& o, const model::DeviceSpec& device,
                               const std::optional<model::DeviceInfo>& gpu, bool measure_host) {
  v1::WorkerMessage hello;
  v1::Register* reg = hello.mutable_register_();
  reg->set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  reg->set_name(o.name);
  reg->set_device(device.ToString());
  reg->set_memory_bytes(gpu ? gpu->free_bytes : MemoryBytes());
  reg->set_mem_bandwidth_gbs(gpu ? gpu->bandwidth_gbs : measure_host ? MeasureReadBandwidth() : 0);
  reg->set_threads(ThreadPool::Default().num_threads());
  reg->set_host(HostName());
  reg->set_host_cores(UsableCores());
  for (int cpu : UsableCpus()) reg->add_host_cpus(cpu);
  reg->set_standby(o.standby);
  return hello;
}

// Reports load progress to the terminal and, at most every 100 ms, to the coordinator.
class LoadProgress {
 public:
  LoadProgress(ControlSession& session, bool show) : session_(session), show_(show) {}

  ProgressFn Phase(const std::string& label) {
    if (show_) reporter_.emplace(label);
    return [this](int64_t done, int64_t total) {
      if (reporter_) reporter_->Update(done, total);
      const auto now = std::chrono::steady_clock::now();
      if (now - last_sent_ > std::chrono::milliseconds(100) || done == total) {
        v1::WorkerMessage p;
        p.mutable_progress()->set_bytes_done(done);
        p.mutable_progress()->set_bytes_total(total);
        session_.Write(p);
        last_sent_ = now;
      }
    };
  }
  void PhaseDone() {
    if (reporter_) reporter_->Done();
    reporter_.reset();
  }

 private:
  ControlSession& session_;
  bool show_;
  std::optional<ProgressReporter> reporter_;
  std::chrono::steady_clock::time_point last_sent_ = std::chrono::steady_clock::now() - std::chrono::seconds(1);
};

// Loads the assigned shard and places its computation on the worker's device. A GPU worker does
// not page its tensors into host memory first: the upload reads them once.
absl::StatusOr<std::unique_ptr<LoadedShard>> LoadAndPlace(const WorkerOptions& o, const v1::Assignment& assignment,
                                                          const plan::WorkerShard& mine, model::ExpertDType expert_dtype,
                                                          const model::DeviceSpec& device, ControlSession& session,
                                                          const WorkerEnvironment& env) {
  LoadProgress progress(session, env.show_progress);
  MMX_ASSIGN_OR_RETURN(
      std::unique_ptr<LoadedShard> shard,
      LoadShard(assignment.model_dir(), mine, expert_dtype, progress.Phase(absl::StrCat("mmx-worker ", o.name, ": loading")),
                /*page_in=*/!device.is_cuda()));
  progress.PhaseDone();
  const kernels::ActivationPrecision precision =
      o.bf16_activations ? kernels::ActivationPrecision::kBf16 : kernels::ActivationPrecision::kFp32;
  if (env.place_shard) {
    MMX_RETURN_IF_ERROR(env.place_shard(*shard, progress.Phase(absl::StrCat("mmx-worker ", o.name, ": placing"))));
  } else if (device.is_cuda()) {
    MMX_RETURN_IF_ERROR(PlaceShard(
        *shard, device, precision,
        progress.Phase(absl::StrCat("mmx-worker ", o.name, ": uploading to ", device.ToString()))));
  }
  progress.PhaseDone();
  return shard;
}

// The memory left for sequence state once loaded: on a GPU what is free there, on the host
// MemAvailable less the weights (whose page cache MemAvailable counts as reclaimable, but which
// must stay resident); 90% of it either way.
absl::StatusOr<int64_t> StateMemoryBytes(const model::DeviceSpec& device, const LoadedShard& shard) {
  if (device.is_cuda()) {
    MMX_ASSIGN_OR_RETURN(const model::DeviceInfo after, parallel::QueryCudaDevice(device));
    return after.free_bytes / 10 * 9;
  }
  return std::max<int64_t>(0, AvailableMemoryBytes() - shard.weight_bytes) / 10 * 9;
}

// The worker's two serving threads: steps (stage work: embed, attention, dispatch, combine,
// tail) and dispatches (this worker's experts on rows from any stage). Both end when the
// transport shuts down.
class ServingThreads {
 public:
  ServingThreads(const WorkerOptions& o, const LoadedShard& shard, transport::Transport& data_plane, Serving& serving,
                 const LogSink& log) {
    const kernels::ActivationPrecision precision =
        o.bf16_activations ? kernels::ActivationPrecision::kBf16 : kernels::ActivationPrecision::kFp32;
    steps_ = std::thread([&data_plane, &serving, log, precision] {
      kernels::ScopedActivationPrecision scoped_precision(precision);
      StepInbox inbox(&data_plane);
      while (true) {
        absl::StatusOr<transport::Message> first = inbox.Next(absl::InfiniteDuration());
        if (!first.ok()) {
          if (absl::IsCancelled(first.status())) return;
          continue;
        }
        std::shared_ptr<StageExecutor> executor = serving.Get();
        if (!executor) continue;
        absl::Status st = executor->Serve(*std::move(first), inbox);
        if (!st.ok()) log(absl::StrCat("step failed: ", st.message()));
      }
    });
    dispatches_ = std::thread([&data_plane, &shard, log, precision] {
      kernels::ScopedActivationPrecision scoped_precision(precision);
      while (true) {
        absl::StatusOr<transport::Message> m =
            data_plane.ReceiveAny(InboxKey(MessageKind::kDispatch), absl::InfiniteDuration());
        if (!m.ok()) {
          if (absl::IsCancelled(m.status())) return;
          continue;
        }
        absl::Status st = HandleDispatch(shard, &data_plane, *m);
        if (!st.ok()) log(absl::StrCat("dispatch failed: ", st.message()));
      }
    });
  }
  // Call after the transport's Shutdown.
  void Join() {
    steps_.join();
    dispatches_.join();
  }

 private:
  std::thread steps_, dispatches_;
};

// Connects to the new addresses of a table (an endpoint already connected is kept: replacing it
// would fail a send in flight on it). A table of a new sequence epoch starts a fresh executor
// (new sequences); one of the same epoch (an expert host back) only updates the routes.
absl::Status ApplyPeerTable(const v1::PeerTable& table, const WorkerOptions& o, const v1::Assignment& assignment,
                            const plan::ShardConfig& config, const LoadedShard& shard, transport::Transport& data_plane,
                            std::map<uint32_t, std::string>& connected, Serving& serving) {
  absl::Status st;
  for (const v1::Peer& p : table.peers()) {
    if (p.peer_id() == assignment.peer_id()) continue;
    auto it = connected.find(p.peer_id());
    if (it != connected.end() && it->second == p.data_address()) continue;
    absl::Status connect = data_plane.Connect(p.peer_id(), p.data_address());
    if (connect.ok()) connected[p.peer_id()] = p.data_address();
    st.Update(connect);
  }
  absl::StatusOr<Routes> routes =
      BuildRoutes(config, table, shard.config().num_hidden_layers, shard.config().num_local_experts, shard.shard.group);
  st.Update(routes.status());
  if (!st.ok()) return absl::Status(st.code(), absl::StrCat("cannot apply the peer table: ", st.message()));
  if (std::shared_ptr<StageExecutor> current = serving.Get();
      current && current->sequence_epoch() == table.sequence_epoch()) {
    current->UpdateRoutes(*std::move(routes));
    return absl::OkStatus();
  }
  auto executor = std::make_shared<StageExecutor>(&shard, &data_plane, assignment.peer_id(), *std::move(routes),
                                                  o.reply_timeout);
  executor->SetSampleableRanges({assignment.sampleable_ranges().begin(), assignment.sampleable_ranges().end()});
  executor->SetKvDType(config.kv_dtype);
  executor->SetWireDType(config.wire_dtype);
  serving.Set(std::move(executor));
  return absl::OkStatus();
}

// Serves peer tables until the session ends. Returns how it ended.
absl::Status ServeUntilSessionEnds(const WorkerOptions& o, const v1::Assignment& assignment,
                                   const plan::ShardConfig& config, const LoadedShard& shard,
                                   transport::Transport& data_plane, ControlSession& session, Heartbeats& heartbeats,
                                   LeaveRequest* leave, const LogSink& log) {
  Serving serving;
  ServingThreads threads(o, shard, data_plane, serving, log);
  std::map<uint32_t, std::string> connected;  // data-plane endpoints, by peer id
  absl::Status result = CoordinatorLost();
  if (leave) {
    // SIGTERM: ask to leave; the coordinator lets the step in flight finish, then dismisses us.
    leave->SetHandler([&session, log] {
      log("stopping (SIGTERM): leaving once the step in flight is done");
      v1::WorkerMessage leaving;
      leaving.mutable_leaving();
      session.Write(leaving);
    });
  }
  v1::CoordinatorMessage msg;
  heartbeats.Listening();
  while (session.Read(&msg)) {
    heartbeats.Heard();
    if (msg.has_heartbeat()) continue;
    if (msg.has_rejected()) {
      result = absl::FailedPreconditionError(msg.rejected().message());
      break;
    }
    if (msg.has_dismissed()) {
      result = Dismissed(msg.dismissed().message());
      break;
    }
    if (msg.has_peer_lost()) {
      const uint32_t peer = msg.peer_lost().peer_id();
      connected.erase(peer);
      if (msg.peer_lost().replicated()) {
        // Route around it first: the Disconnect below fails a collect waiting on it, and its
        // rows go again to the other holders (decoder_layer.h EndLayer).
        if (std::shared_ptr<StageExecutor> executor = serving.Get()) executor->RouteAround(peer);
        data_plane.Disconnect(peer);
        log(absl::StrCat("peer '", msg.peer_lost().name(), "' lost; its experts are held elsewhere, routing around it"));
        continue;
      }
      // Fail whatever waits on the lost peer now, rather than at a timeout.
      data_plane.Disconnect(peer);
      serving.Set(nullptr);
      log(absl::StrCat("peer '", msg.peer_lost().name(), "' lost; waiting for a new peer table"));
      continue;
    }
    if (!msg.has_peers()) continue;
    absl::Status st = ApplyPeerTable(msg.peers(), o, assignment, config, shard, data_plane, connected, serving);
    if (!st.ok()) {
      (void)ReportFailure(session, st);
      continue;
    }
    std::string busy_poll;
    if (!o.busy_poll) {
      const absl::Duration automatic = AutomaticBusyPoll(msg.peers(), assignment.peer_id());
      data_plane.SetBusyPoll(automatic);
      busy_poll = absl::StrCat(", busy-poll ", absl::ToInt64Microseconds(automatic), " us (automatic: ",
                               automatic == absl::ZeroDuration() ? "its host's cores are shared)" : "cores to spare)");
    }
    // Logged before the coordinator hears of it: once the cluster is ready, the line is there.
    log(absl::StrCat("serving (peer table v", msg.peers().version(),
                     shard.attention ? absl::StrCat(", KV cache ", model::KvDTypeName(config.kv_dtype), ", activations out ",
                                                    WireDTypeName(config.wire_dtype))
                                     : "",
                     busy_poll, ")"));
    v1::WorkerMessage applied;
    applied.mutable_peers_applied()->set_version(msg.peers().version());
    session.Write(applied);
  }
  if (leave) leave->SetHandler(nullptr);
  data_plane.Shutdown();
  threads.Join();
  serving.Set(nullptr);
  return result;
}

}  // namespace

absl::Duration AutomaticBusyPoll(const v1::PeerTable& table, uint32_t self) {
  for (const v1::Peer& p : table.peers()) {
    if (p.peer_id() == self) return p.shares_cores() ? absl::ZeroDuration() : kAutomaticBusyPoll;
  }
  return absl::ZeroDuration();
}

bool IsCoordinatorLost(const absl::Status& status) {
  return status.GetPayload(kCoordinatorLostType).has_value();
}

bool IsDismissed(const absl::Status& status) { return status.GetPayload(kDismissedType).has_value(); }

// The session ended before an Assignment: what the coordinator said (a refused join token), or,
// where no control plane answers (the client API's address of a coordinator whose control plane
// has its own --control-listen), where to point the worker instead.
absl::Status SessionRefused(const WorkerOptions& o, const absl::Status& finished, absl::string_view what) {
  if (finished.code() == absl::StatusCode::kUnimplemented) {
    return absl::FailedPreconditionError(absl::StrCat(
        "no worker control plane at ", o.coordinator,
        ": give --coordinator the address of the coordinator's --control-listen"));
  }
  return absl::UnavailableError(absl::StrCat("the coordinator ", what, ": ", finished.message()));
}

absl::Status ServeSession(const WorkerOptions& o, ControlSession& session, const WorkerEnvironment& env) {
  MMX_ASSIGN_OR_RETURN(const model::DeviceSpec device, model::ParseDeviceSpec(o.device));
  // A GPU worker offers its GPU's memory and bandwidth to the planner; checking the GPU before
  // registering also fails a worker without one (or a build without CUDA) at once.
  std::optional<model::DeviceInfo> gpu;
  if (device.is_cuda()) {
    MMX_ASSIGN_OR_RETURN(gpu, parallel::QueryCudaDevice(device));
    env.log(absl::StrCat(gpu->name, ", ", absl::StrFormat("%.1f GiB free of %.1f GiB, %.0f GB/s",
                                                         gpu->free_bytes / double(1 << 30),
                                                         gpu->total_bytes / double(1 << 30), gpu->bandwidth_gbs)));
  }
  if (!session.Write(MakeRegister(o, device, gpu, env.measure_host))) {
    return SessionRefused(o, session.Finish(), "closed the session at Register");
  }
  v1::CoordinatorMessage msg;
  if (!session.Read(&msg)) {
    return SessionRefused(o, session.Finish(), "ended the session");
  }
  if (msg.has_rejected()) return absl::FailedPreconditionError(msg.rejected().message());
  std::optional<Heartbeats> heartbeats;
  if (msg.has_standby()) {
    // Holding nothing until a worker is lost whose entry fits here; heartbeats meanwhile.
    heartbeats.emplace(session, absl::Milliseconds(msg.standby().heartbeat_interval_ms()),
                       absl::Milliseconds(msg.standby().heartbeat_timeout_ms()), env.log);
    heartbeats->Listening();
    env.log("standby: registered, waiting for an entry to take over");
    do {
      if (!session.Read(&msg)) return CoordinatorLost();
      heartbeats->Heard();
      if (msg.has_rejected()) return absl::FailedPreconditionError(msg.rejected().message());
    } while (!msg.has_assignment());
    heartbeats->Listening(false);  // loading: nothing is read until serving
    env.log(absl::StrCat("standby: taking over the entry '", msg.assignment().entry_name(), "'"));
  }
  if (!msg.has_assignment()) return absl::InternalError("expected an Assignment from the coordinator");
  const v1::Assignment assignment = msg.assignment();
  if (!heartbeats) {
    heartbeats.emplace(session, absl::Milliseconds(assignment.heartbeat_interval_ms()),
                       absl::Milliseconds(assignment.heartbeat_timeout_ms()), env.log);
  }

  MMX_ASSIGN_OR_RETURN(plan::ShardConfig config, plan::ParseShardConfig(assignment.shard_yaml(), "assigned shard"));
  const plan::WorkerShard* mine = config.Find(assignment.entry_name());
  if (mine == nullptr) {
    return absl::InternalError(absl::StrCat("the assigned shard config has no entry '", assignment.entry_name(), "'"));
  }
  MMX_ASSIGN_OR_RETURN(const model::ExpertDType expert_dtype, model::ParseExpertDType(config.expert_dtype));

  transport::TransportOptions topts;
  topts.self = assignment.peer_id();
  MMX_ASSIGN_OR_RETURN(topts.cluster_token, transport::ClusterToken::FromBytes(assignment.cluster_token()));
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<transport::Transport> data_plane, env.make_transport(topts));

  plan::ShardConfig entry_only;
  entry_only.model = assignment.model_dir();
  entry_only.expert_dtype = config.expert_dtype;
  entry_only.workers = {*mine};
  const std::string key = absl::StrCat(o.device, o.bf16_activations ? " bf16\n" : " fp32\n", plan::ShardConfigToYaml(entry_only));
  std::unique_ptr<LoadedShard> loaded;
  const LoadedShard* shard = nullptr;
  if (env.shard_cache != nullptr && env.shard_cache->shard && env.shard_cache->key == key) {
    env.log("the same entry as before: reusing the shard already loaded");
    shard = env.shard_cache->shard.get();
  } else {
    if (env.shard_cache != nullptr) env.shard_cache->shard.reset();  // its memory first
    absl::StatusOr<std::unique_ptr<LoadedShard>> fresh =
        LoadAndPlace(o, assignment, *mine, expert_dtype, device, session, env);
    if (!fresh.ok()) return ReportFailure(session, fresh.status());
    loaded = *std::move(fresh);
    shard = loaded.get();
    if (env.shard_cache != nullptr) {
      env.shard_cache->key = key;
      env.shard_cache->shard = std::move(loaded);
    }
  }
  absl::StatusOr<int64_t> state_memory = StateMemoryBytes(device, *shard);
  if (!state_memory.ok()) return ReportFailure(session, state_memory.status());

  v1::WorkerMessage ready;
  ready.mutable_ready()->set_checkpoint_fingerprint(model::CheckpointFingerprint(*shard->checkpoint));
  ready.mutable_ready()->set_data_address(data_plane->LocalAddress());
  ready.mutable_ready()->set_state_memory_bytes(*state_memory);
  for (const auto& [name, digest] : shard->tensor_digests) {
    v1::TensorDigest* d = ready.mutable_ready()->add_tensor_digests();
    d->set_name(name);
    d->set_file(digest.file);
    d->set_sha256(digest.sha256);
  }
  session.Write(ready);
  return ServeUntilSessionEnds(o, assignment, config, *shard, *data_plane, session, *heartbeats, env.leave, env.log);
}

}  // namespace mmx::worker
