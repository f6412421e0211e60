#include "coordinator/cluster.h"

#include <algorithm>
#include <limits>
#include <map>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "coordinator/core_sharing.h"
#include "coordinator/session_watchdog.h"
#include "plan/planner.h"

namespace mmx::coordinator {

std::vector<std::string> DescribeRoles(const plan::WorkerShard& w) {
  std::vector<std::string> roles;
  if (w.embedding) roles.push_back("embedding");
  if (w.attention) roles.push_back(absl::StrCat("attention[", w.attention->begin, ",", w.attention->end, ")"));
  for (const plan::ExpertBlock& b : w.experts) {
    roles.push_back(absl::StrCat("experts[", b.layers.begin, ",", b.layers.end, "):",
                                 b.all ? std::string("all") : absl::StrJoin(b.ids, ",")));
  }
  if (w.lm_head) roles.push_back("lm_head");
  return roles;
}

Cluster::Cluster(plan::ShardConfig shard, model::ModelConfig config, std::string fingerprint,
                 transport::Transport* transport, transport::ClusterToken cluster_token)
    : config_(std::move(config)), sizes_(plan::ComputeModelSizes(config_)), fingerprint_(std::move(fingerprint)),
      transport_(transport), cluster_token_(cluster_token) {
  absl::MutexLock lock(&mu_);
  SetShard(std::move(shard));
}

Cluster::Cluster(LivePlanning planning, model::ModelConfig config, std::string fingerprint,
                 transport::Transport* transport, transport::ClusterToken cluster_token)
    : config_(std::move(config)), sizes_(plan::ComputeModelSizes(config_)), fingerprint_(std::move(fingerprint)),
      transport_(transport), cluster_token_(cluster_token), planning_(std::move(planning)) {
  absl::MutexLock lock(&mu_);
  shard_.model = planning_->model_dir;
}

void Cluster::SetShard(plan::ShardConfig shard) {
  shard_ = std::move(shard);
  slots_.clear();
  slots_.resize(shard_.workers.size());
  heads_.clear();
  for (size_t i = 0; i < shard_.workers.size(); ++i) {
    slots_[i].entry = &shard_.workers[i];
    slots_[i].peer_id = static_cast<transport::PeerId>(i + 1);  // 0 is the coordinator
    if (shard_.workers[i].embedding) heads_[shard_.workers[i].group] = slots_[i].peer_id;
  }
  planned_ = true;
}

plan::ShardConfig Cluster::shard() const {
  absl::MutexLock lock(&mu_);
  return shard_;
}

std::vector<std::string> Cluster::Groups() const {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> groups = plan::AttentionGroups(shard_);
  if (groups.empty()) groups.push_back("");
  return groups;
}

transport::PeerId Cluster::head(const std::string& group) const {
  absl::MutexLock lock(&mu_);
  if (heads_.size() == 1) return heads_.begin()->second;
  const auto it = heads_.find(group);
  return it == heads_.end() ? 0 : it->second;
}

void Cluster::PlanFromPendingWorkers() {
  plan::ClusterSpec spec;
  spec.serving = planning_->serving;
  for (const v1::Register& r : pending_) {
    plan::WorkerSpec w;
    w.name = w.group = r.name();
    w.device = r.device() == "cpu" ? plan::DeviceKind::kCpu : plan::DeviceKind::kCuda;
    w.memory_gib = static_cast<double>(r.memory_bytes()) / (1ull << 30);
    w.mem_bandwidth_gbs = r.mem_bandwidth_gbs() > 0 ? r.mem_bandwidth_gbs() : 10;
    // Not measured at registration yet: ~0.1 TFLOP/s of fp32 FMA per CPU thread (BUILD.md §9).
    w.tflops = 0.1 * std::max(1, r.threads());
    // A GPU: not measured either; 100 TFLOP/s is a conservative bf16 tensor-core figure for
    // the A100/H100 class (their peaks are 312 and ~990).
    if (w.device == plan::DeviceKind::kCuda) w.tflops = 100;
    w.network_gbps = planning_->network_gbps;
    spec.workers.push_back(w);
  }
  plan::PlanResult result = plan::Plan(config_, spec, planning_->model_dir);
  if (!result.fits) {
    plan_error_ = absl::ResourceExhaustedError(absl::StrCat(
        "the ", pending_.size(), " registered workers cannot hold the model: ", result.shortfall));
    log_(std::string(plan_error_.message()));
    return;
  }
  log_(absl::StrCat("planned from ", pending_.size(), " live workers; shard config:\n",
                    plan::ShardConfigToYaml(result.shard)));
  SetShard(std::move(result.shard));
}

Cluster::Slot* Cluster::FindSession(uint64_t session_id) {
  for (Slot& s : slots_) {
    if (s.session_id == session_id && session_id != 0) return &s;
  }
  return nullptr;
}

absl::StatusOr<v1::CoordinatorMessage> Cluster::Register(const v1::Register& request, SessionWriter writer,
                                                         uint64_t* session_id, std::function<void()> close) {
  if (request.protocol_version() != v1::PROTOCOL_VERSION_CURRENT) {
    return absl::InvalidArgumentError(absl::StrCat("worker speaks control protocol ", request.protocol_version(),
                                                   ", this coordinator speaks ",
                                                   static_cast<int>(v1::PROTOCOL_VERSION_CURRENT),
                                                   "; run the same mmx version on both"));
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<v1::CoordinatorMessage> reply = RegisterLocked(request, std::move(writer), session_id);
  // Under the same lock: a race for a lost entry may have to end this session at any moment.
  if (reply.ok() && close) closers_[*session_id] = std::move(close);
  return reply;
}

absl::StatusOr<v1::CoordinatorMessage> Cluster::RegisterLocked(const v1::Register& request, SessionWriter writer,
                                                               uint64_t* session_id) {
  if (request.standby()) return RegisterStandby(request, writer, session_id);
  if (planning_ && !planned_) {
    for (const v1::Register& p : pending_) {
      if (p.name() == request.name()) {
        return absl::AlreadyExistsError(absl::StrCat("worker name '", request.name(),
                                                     "' is already registered; give each worker its own name"));
      }
    }
    pending_.push_back(request);
    log_(absl::StrCat("worker '", request.name(), "' registered (", pending_.size(), " of ", planning_->expect_workers,
                      " expected), waiting for the plan"));
    if (static_cast<int>(pending_.size()) == planning_->expect_workers) PlanFromPendingWorkers();
    auto decided = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return planned_ || !plan_error_.ok(); };
    mu_.Await(absl::Condition(&decided));
  }
  if (!plan_error_.ok()) return plan_error_;
  Slot* slot = nullptr;
  std::vector<std::string> names;
  for (Slot& s : slots_) {
    names.push_back(s.entry->name);
    if (s.entry->name == request.name()) slot = &s;
  }
  if (slot == nullptr) {
    if (planning_) {
      return absl::InvalidArgumentError(absl::StrCat("the plan gives worker '", request.name(),
                                                     "' no role (it uses: ", absl::StrJoin(names, ", "), ")"));
    }
    return absl::InvalidArgumentError(absl::StrCat("unknown worker name '", request.name(),
                                                   "'; the shard config names: ", absl::StrJoin(names, ", ")));
  }
  // The planner sized this entry for its device; a CPU worker in a GPU's place (or the
  // reverse) would not fit it. Ordinals may differ: machines number their GPUs alike.
  const bool entry_gpu = absl::StartsWith(slot->entry->device, "cuda");
  const bool worker_gpu = absl::StartsWith(request.device(), "cuda");
  if (entry_gpu != worker_gpu) {
    return absl::FailedPreconditionError(absl::StrCat(
        "worker '", request.name(), "' is device ", slot->entry->device, " in the shard config but registered with --device ",
        request.device(), "; start it with --device ", slot->entry->device, " or change the shard config"));
  }
  if (slot->session_id != 0) {
    if (slot->info.name() != slot->entry->name && slot->state == v1::WORKER_STATE_LOADING && !slot->handover) {
      // Back while a standby loads its entry: both load, whichever is ready first takes it.
      *session_id = next_session_++;
      Slot::Handover race;
      race.session_id = *session_id;
      race.writer = std::move(writer);
      race.info = request;
      race.race = true;
      slot->handover = std::move(race);
      log_(absl::StrCat("worker '", request.name(), "' is back while standby '", slot->info.name(),
                        "' loads its entry: whichever is ready first takes it"));
      v1::CoordinatorMessage reply;
      *reply.mutable_assignment() = MakeAssignment(*slot);
      return reply;
    }
    if (slot->info.name() != slot->entry->name) {
      // A standby took this worker's entry while it was gone (or frozen): it stays as a standby.
      log_(absl::StrCat("worker '", request.name(), "' is back, but standby '", slot->info.name(),
                        "' holds its entry now; it becomes a standby"));
      return RegisterStandby(request, writer, session_id);
    }
    return absl::AlreadyExistsError(absl::StrCat("worker name '", request.name(),
                                                 "' is already claimed by a live worker; give each worker its own name"));
  }
  *session_id = next_session_++;
  Claim(*slot, *session_id, std::move(writer), request);
  log_(absl::StrCat("worker '", request.name(), "' registered (device ", request.device(), "), loading"));
  v1::CoordinatorMessage reply;
  *reply.mutable_assignment() = MakeAssignment(*slot);
  return reply;
}

void Cluster::Claim(Slot& slot, uint64_t session_id, SessionWriter writer, const v1::Register& info) {
  slot.session_id = session_id;
  slot.writer = std::move(writer);
  slot.state = v1::WORKER_STATE_LOADING;
  slot.bytes_done = slot.bytes_total = 0;
  slot.message.clear();
  slot.end_reason.clear();
  slot.leaving = slot.dismissed = false;
  slot.applied_version = 0;
  slot.info = info;
}

v1::Assignment Cluster::MakeAssignment(const Slot& slot) const {
  v1::Assignment a;
  a.set_peer_id(slot.peer_id);
  a.set_cluster_token(cluster_token_.ToBytes());
  a.set_model_dir(shard_.model);
  a.set_shard_yaml(plan::ShardConfigToYaml(shard_));
  a.set_config_fingerprint(fingerprint_);
  a.mutable_sampleable_ranges()->Add(sampleable_ranges_.begin(), sampleable_ranges_.end());
  a.set_entry_name(slot.entry->name);
  a.set_heartbeat_interval_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(HeartbeatInterval(heartbeat_timeout_))));
  a.set_heartbeat_timeout_ms(static_cast<uint32_t>(absl::ToInt64Milliseconds(heartbeat_timeout_)));
  return a;
}

void Cluster::SetSampleableRanges(std::vector<int32_t> ranges) {
  absl::MutexLock lock(&mu_);
  sampleable_ranges_ = std::move(ranges);
}

void Cluster::OnProgress(uint64_t session_id, int64_t done, int64_t total) {
  absl::MutexLock lock(&mu_);
  if (Slot* s = FindHandover(session_id)) {
    s->handover->bytes_done = done;
    s->handover->bytes_total = total;
  } else if (Slot* s = FindSession(session_id)) {
    s->bytes_done = done;
    s->bytes_total = total;
  }
}

absl::Status Cluster::OnReady(uint64_t session_id, const v1::Ready& ready) {
  absl::MutexLock lock(&mu_);
  if (Slot* h = FindHandover(session_id)) return CompleteHandover(*h, ready);
  Slot* s = FindSession(session_id);
  if (s == nullptr) return absl::NotFoundError("session is gone");
  if (absl::Status same = SameCheckpoint(ready); !same.ok()) {
    s->state = v1::WORKER_STATE_FAILED;
    s->message = std::string(same.message());
    return absl::FailedPreconditionError(absl::StrCat("worker '", s->entry->name, "': ", s->message));
  }
  if (s->connected_address != ready.data_address()) {
    // Connect before any peer hears of the address: a garbage or unreachable one fails this
    // worker alone, where sending it out would fail every peer that tried it.
    if (absl::Status st = transport_->Connect(s->peer_id, ready.data_address()); !st.ok()) {
      s->state = v1::WORKER_STATE_FAILED;
      s->message = absl::StrCat("its data-plane address is unusable: ", st.message());
      return absl::FailedPreconditionError(absl::StrCat("worker '", s->entry->name, "': ", s->message));
    }
    s->connected_address = ready.data_address();
  }
  s->data_address = ready.data_address();
  s->state_memory_bytes = ready.state_memory_bytes();
  s->state = v1::WORKER_STATE_READY;
  if (s->handover && s->handover->race) {
    // The standby is ready first: the restarted worker goes back to register (as a standby).
    log_(absl::StrCat("standby '", s->info.name(), "' is ready before worker '", s->handover->info.name(),
                      "' restarted: it keeps the entry"));
    CloseSession(s->handover->session_id);
    s->handover.reset();
  }
  s->bytes_done = s->bytes_total;
  log_(absl::StrCat("worker '", s->entry->name, "' loaded its shard"));
  published_ = false;  // a (re)joined worker needs a new table, and so do its peers
  MaybePublishPeers();
  return absl::OkStatus();
}

v1::PeerTable Cluster::BuildPeerTable() const {
  v1::PeerTable table;
  table.set_version(table_version_);
  table.set_sequence_epoch(epoch_);
  v1::Peer* coord = table.add_peers();
  coord->set_peer_id(0);
  coord->set_name("coordinator");
  coord->set_data_address(transport_->LocalAddress());
  std::vector<v1::Register> serving;
  for (const Slot& s : slots_) {
    if (s.state == v1::WORKER_STATE_READY) serving.push_back(s.info);
  }
  const std::set<std::string> sharing = HostsSharingCores(serving);
  for (const Slot& s : slots_) {
    if (s.state != v1::WORKER_STATE_READY) continue;  // an expert host routed around until it is back
    v1::Peer* p = table.add_peers();
    p->set_peer_id(s.peer_id);
    p->set_name(s.entry->name);
    p->set_data_address(s.data_address);
    p->set_shares_cores(sharing.contains(s.info.host()));
  }
  return table;
}

void Cluster::MaybePublishPeers() {
  if (published_) return;
  for (const Slot& s : slots_) {
    if (!s.excused && s.state != v1::WORKER_STATE_READY) return;
  }
  ++table_version_;
  if (published_epoch_ != epoch_) {
    epoch_first_version_ = table_version_;
    published_epoch_ = epoch_;
  }
  for (Slot& s : slots_) {
    if (s.state != v1::WORKER_STATE_READY || s.connected_address == s.data_address) continue;
    // Only new addresses: replacing a live endpoint would fail a step's send in flight on it.
    absl::Status st = transport_->Connect(s.peer_id, s.data_address);
    if (!st.ok()) log_(absl::StrCat("cannot reach worker '", s.entry->name, "' on the data plane: ", st.message()));
    s.connected_address = s.data_address;
  }
  v1::CoordinatorMessage msg;
  *msg.mutable_peers() = BuildPeerTable();
  const bool returning = std::any_of(slots_.begin(), slots_.end(), Returning);
  for (Slot& s : slots_) {
    if (!s.writer || s.state != v1::WORKER_STATE_READY || (returning && !Returning(s))) continue;
    s.writer(msg);
    s.sent_version = table_version_;
  }
  held_table_.reset();
  if (returning) held_table_ = std::move(msg);
  published_ = true;
}

void Cluster::SendHeldTable() {
  if (held_table_) {
    for (const Slot& s : slots_) {
      if (Returning(s) && s.applied_version < table_version_) return;
    }
    for (Slot& s : slots_) {
      if (!s.writer || s.state != v1::WORKER_STATE_READY || s.sent_version >= table_version_) continue;
      s.writer(*held_table_);
      s.sent_version = table_version_;
    }
    held_table_.reset();
  }
  for (const Slot& s : slots_) {
    if (s.session_id != 0 && s.state == v1::WORKER_STATE_READY && s.applied_version < table_version_) return;
  }
  for (Slot& s : slots_) {
    if (!Returning(s)) continue;
    s.excused = false;
    log_(absl::StrCat("worker '", s.entry->name, "' is back; its experts are routed to it again"));
  }
}

bool Cluster::ExpertsHeldElsewhere(const Slot& lost) const {
  const int L = config_.num_hidden_layers, E = config_.num_local_experts;
  for (int l = 0; l < L; ++l) {
    for (int e : lost.entry->ExpertsOfLayer(l, E)) {
      bool held = false;
      for (const Slot& s : slots_) {
        // A worker stopping (SIGTERM) is about to go too: its copies do not count.
        if (&s == &lost || s.excused || s.leaving || s.session_id == 0 || s.state != v1::WORKER_STATE_READY) continue;
        const std::vector<int> its = s.entry->ExpertsOfLayer(l, E);
        held = held || std::find(its.begin(), its.end(), e) != its.end();
      }
      if (!held) return false;
    }
  }
  return true;
}

void Cluster::SendPeerLost(const Slot& lost, bool replicated) {
  v1::CoordinatorMessage msg;
  msg.mutable_peer_lost()->set_peer_id(lost.peer_id);
  msg.mutable_peer_lost()->set_name(lost.entry->name);
  msg.mutable_peer_lost()->set_replicated(replicated);
  for (Slot& other : slots_) {
    if (other.writer) other.writer(msg);
  }
}

void Cluster::OnPeersApplied(uint64_t session_id, uint64_t version) {
  absl::MutexLock lock(&mu_);
  if (Slot* s = FindSession(session_id)) s->applied_version = version;
  SendHeldTable();
  UpdateReady();
}

std::vector<Cluster::Stage> Cluster::Stages() const {
  absl::MutexLock lock(&mu_);
  std::map<std::string, int> workers_per_host;
  for (const Slot& s : slots_) ++workers_per_host[s.info.host()];
  std::vector<Stage> stages;
  for (const Slot& s : slots_) {
    if (!s.entry || !s.entry->attention) continue;
    // Workers of one host each report the host's free memory: each may count on its share.
    const int sharing = s.info.host().empty() ? 1 : workers_per_host[s.info.host()];
    stages.push_back({s.entry->name, s.entry->attention->begin, s.entry->attention->end,
                      s.state_memory_bytes / std::max(1, sharing), s.entry->group});
  }
  return stages;
}

std::string Cluster::WorkerName(transport::PeerId peer) const {
  absl::MutexLock lock(&mu_);
  for (const Slot& s : slots_) {
    if (s.peer_id == peer && s.entry) return s.entry->name;
  }
  return "";
}

int Cluster::AutomaticMicroBatches() const {
  absl::MutexLock lock(&mu_);
  return automatic_micro_batches_;
}

int Cluster::AutomaticStepsInFlight() const {
  absl::MutexLock lock(&mu_);
  return automatic_steps_in_flight_;
}

void Cluster::UpdateReady() {
  bool all = published_;
  for (const Slot& s : slots_) {
    all = all && (s.excused || (s.state == v1::WORKER_STATE_READY && !s.leaving &&
                                s.applied_version >= epoch_first_version_));
  }
  if (all && !ready_) {
    std::vector<v1::Register> infos;
    for (const Slot& s : slots_) infos.push_back(s.info);
    const AutomaticOverlap overlap = ChooseOverlap(shard_, infos, config_.num_local_experts);
    automatic_micro_batches_ = overlap.micro_batches;
    automatic_steps_in_flight_ = overlap.steps_in_flight;
    log_(absl::StrCat("cluster ready (", slots_.size(), " workers); automatic micro-batches: ",
                      automatic_micro_batches_, ", steps in flight: ", automatic_steps_in_flight_,
                      overlap.sharing.empty() ? "" : ", as ", overlap.sharing));
  }
  const bool changed = ready_ != all;
  ready_ = all;
  if (changed) NotifyChange();
}

uint64_t Cluster::Subscribe(ChangeListener on_change) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_listener_++;
  listeners_.emplace(id, std::move(on_change));
  return id;
}

void Cluster::Unsubscribe(uint64_t id) {
  absl::MutexLock lock(&mu_);
  listeners_.erase(id);
}

void Cluster::NotifyChange() {
  for (const auto& [id, listener] : listeners_) listener(ready_, epoch_);
}

void Cluster::OnFailed(uint64_t session_id, const std::string& message) {
  absl::MutexLock lock(&mu_);
  if (Slot* s = FindSession(session_id)) {
    s->state = v1::WORKER_STATE_FAILED;
    s->message = message;
    last_loss_ = absl::StrCat("worker '", s->entry->name, "' failed: ", message);
    log_(last_loss_);
  }
  if (ready_) ++epoch_;
  ready_ = false;
  NotifyChange();
}

void Cluster::OnSessionEnded(uint64_t session_id) {
  absl::MutexLock lock(&mu_);
  closers_.erase(session_id);
  if (DropStandby(session_id)) return;
  if (Slot* h = FindHandover(session_id)) {
    const bool race = h->handover->race;
    log_(absl::StrCat("worker '", h->handover->info.name(), "' was lost while taking over '", h->entry->name, "'"));
    h->handover.reset();
    // A stopping worker whose standby died while loading leaves the ordinary way.
    if (!race && h->session_id != 0) {
      h->leaving = true;
      UpdateReady();
    }
    return;
  }
  Slot* s = FindSession(session_id);
  if (s == nullptr) return;
  // Lost again before it applied the table that brought it back: nobody else gets that table.
  if (Returning(*s)) held_table_.reset();
  s->session_id = 0;
  s->writer = nullptr;
  if (s->state != v1::WORKER_STATE_FAILED) {
    s->state = v1::WORKER_STATE_LOST;
    s->message = s->end_reason.empty() ? "control session ended (worker exited or was killed)" : s->end_reason;
  }
  transport_->Disconnect(s->peer_id);
  s->connected_address.clear();
  const plan::WorkerShard& e = *s->entry;
  if (ready_ && e.experts_only() && ExpertsHeldElsewhere(*s)) {
    // Only experts, all replicated: the stages route around it, the step in flight included.
    s->excused = true;
    log_(absl::StrCat("worker '", e.name, "' lost: ", s->message, "; every expert it held is held elsewhere, "
                      "serving goes on without it"));
    SendPeerLost(*s, /*replicated=*/true);
    AssignStandbys();  // restores the replicas, when a standby fits
    UpdateReady();
    return;
  }
  last_loss_ = absl::StrCat("worker '", e.name, "' lost: ", s->message);
  log_(last_loss_);
  // The new epoch first: what the other workers do on hearing of the loss (fail their steps)
  // then reaches a scheduler that already knows the step is void, and why.
  published_ = false;
  ++epoch_;
  ready_ = false;
  NotifyChange();
  SendPeerLost(*s, /*replicated=*/false);
  AssignStandbys();
}

bool Cluster::ready() const {
  absl::MutexLock lock(&mu_);
  return ready_;
}

uint64_t Cluster::epoch() const {
  absl::MutexLock lock(&mu_);
  return epoch_;
}

std::string Cluster::last_loss() const {
  absl::MutexLock lock(&mu_);
  return last_loss_;
}

bool Cluster::WaitReady(absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&ready_), timeout);
  return ready_;
}

std::string Cluster::NotReadyReason() const {
  absl::MutexLock lock(&mu_);
  return NotReadyReasonLocked();
}

Cluster::Moment Cluster::Now() const {
  absl::MutexLock lock(&mu_);
  return Moment{ready_, epoch_, last_loss_, ready_ ? std::string() : NotReadyReasonLocked()};
}

std::string Cluster::NotReadyReasonLocked() const {
  std::vector<std::string> parts;
  for (const Slot& s : slots_) {
    switch (s.state) {
      case v1::WORKER_STATE_READY:
        if (s.leaving) parts.push_back(absl::StrCat("worker '", s.entry->name, "' is stopping (SIGTERM)"));
        if (s.applied_version < epoch_first_version_) parts.push_back(absl::StrCat("worker '", s.entry->name, "' is connecting to its peers"));
        break;
      case v1::WORKER_STATE_LOADING:
        parts.push_back(absl::StrCat("worker '", s.entry->name, "' is loading (",
                                     s.bytes_total > 0 ? 100 * s.bytes_done / s.bytes_total : 0, "%)"));
        break;
      case v1::WORKER_STATE_LOST:
      case v1::WORKER_STATE_FAILED:
        parts.push_back(absl::StrCat("worker '", s.entry->name, "' is ", s.state == v1::WORKER_STATE_LOST ? "lost" : "failed",
                                     s.message.empty() ? "" : ": " + s.message));
        break;
      default:
        parts.push_back(absl::StrCat("worker '", s.entry->name, "' has not registered"));
    }
  }
  return parts.empty() ? "cluster is ready" : absl::StrCat("cluster not ready: ", absl::StrJoin(parts, "; "));
}

v1::ClusterStatus Cluster::Status() const {
  absl::MutexLock lock(&mu_);
  v1::ClusterStatus status;
  status.set_ready(ready_);
  status.set_model(shard_.model);
  for (const Slot& s : slots_) {
    v1::WorkerStatus* w = status.add_workers();
    w->set_name(s.entry->name);
    for (const std::string& r : DescribeRoles(*s.entry)) w->add_roles(r);
    w->set_group(s.entry->group);
    w->set_state(s.state == v1::WORKER_STATE_UNSPECIFIED ? v1::WORKER_STATE_REGISTERING : s.state);
    w->set_load_progress(s.bytes_total > 0 ? static_cast<float>(s.bytes_done) / s.bytes_total : 0.f);
    w->set_device(s.info.device().empty() ? s.entry->device : s.info.device());
    w->set_message(s.message);
    if (s.handover) {
      const int64_t total = s.handover->bytes_total;
      w->set_message(absl::StrCat("stopping; standby '", s.handover->info.name(), "' is loading to take over (",
                                  total > 0 ? 100 * s.handover->bytes_done / total : 0, "%)"));
    }
    w->set_memory_bytes(s.info.memory_bytes());
    w->set_mem_bandwidth_gbs(s.info.mem_bandwidth_gbs());
    if (s.session_id != 0) w->set_process_name(s.info.name());
  }
  for (const StandbyWorker& s : standbys_) {
    v1::WorkerStatus* w = status.add_workers();
    w->set_name(s.info.name());
    w->set_state(v1::WORKER_STATE_STANDBY);
    w->set_device(s.info.device());
    w->set_memory_bytes(s.info.memory_bytes());
    w->set_mem_bandwidth_gbs(s.info.mem_bandwidth_gbs());
    w->set_process_name(s.info.name());
  }
  return status;
}

}  // namespace mmx::coordinator
