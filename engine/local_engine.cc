#include "engine/local_engine.h"

#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "coordinator/worker_session.h"
#include "engine/inproc_session.h"
#include "model/checkpoint.h"
#include "model/checkpoint_fingerprint.h"
#include "worker/worker_runtime.h"

namespace mmx::engine {

// One worker of the engine: its session, its thread and the coordinator's thread serving it.
struct LocalEngine::Member {
  std::string name;
  InprocSession session;
  std::thread worker;
  std::thread coordinator_side;
};

absl::StatusOr<std::unique_ptr<LocalEngine>> LocalEngine::Start(LocalEngineOptions options) {
  std::unique_ptr<LocalEngine> engine(new LocalEngine());
  engine->options_ = std::move(options);
  const LocalEngineOptions& o = engine->options_;
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<model::Checkpoint> checkpoint, model::Checkpoint::Open(o.model_dir));
  MMX_RETURN_IF_ERROR(checkpoint->ValidateAgainstConfig());
  engine->config_ = checkpoint->config();
  if (o.shard) {
    engine->shard_ = *o.shard;
  } else {
    engine->shard_ = plan::WholeModelShardConfig(o.model_dir, "local", o.device, engine->config_, o.expert_dtype);
    engine->shard_.kv_dtype = o.kv_dtype;
  }
  MMX_RETURN_IF_ERROR(plan::ValidateShardConfig(engine->shard_, engine->config_));

  transport::TransportOptions topts;
  topts.self = 0;
  topts.cluster_token = transport::ClusterToken::Random();
  engine->fabric_ = std::make_shared<transport::InprocFabric>();
  MMX_ASSIGN_OR_RETURN(engine->transport_, transport::InprocTransport::Create(engine->fabric_, "coordinator", topts));
  engine->cluster_ = std::make_unique<coordinator::Cluster>(engine->shard_, engine->config_,
                                                            model::CheckpointFingerprint(*checkpoint),
                                                            engine->transport_.get(), topts.cluster_token);
  engine->cluster_->set_log(o.log);
  engine->cluster_->SetSampleableRanges(o.sampleable_ranges);
  LocalEngine* self = engine.get();
  engine->cluster_->Subscribe([self](bool ready, uint64_t) {
    absl::MutexLock lock(&self->mu_);
    self->ready_ = ready;
  });
  for (const plan::WorkerShard& entry : engine->shard_.workers) MMX_RETURN_IF_ERROR(engine->StartWorker(entry));
  MMX_RETURN_IF_ERROR(engine->WaitReady());
  if (o.start_scheduler) {
    engine->scheduler_ =
        std::make_unique<coordinator::Scheduler>(engine->cluster_.get(), engine->transport_.get(), o.scheduler);
  }
  return engine;
}

absl::Status LocalEngine::StartWorker(const plan::WorkerShard& entry) {
  auto member = std::make_unique<Member>();
  member->name = entry.name;
  Member* m = member.get();
  worker::WorkerOptions wo;
  wo.name = entry.name;
  wo.device = entry.device;
  wo.bf16_activations = options_.bf16_activations;
  worker::WorkerEnvironment env;
  const LogSink log = options_.log;
  env.log = [log, name = entry.name](const std::string& line) { log(absl::StrCat("worker ", name, ": ", line)); };
  env.show_progress = options_.show_progress;
  env.measure_host = false;
  env.place_shard = options_.place_shard;
  std::shared_ptr<transport::InprocFabric> fabric = fabric_;
  env.make_transport = [fabric, name = entry.name](const transport::TransportOptions& topts)
      -> absl::StatusOr<std::unique_ptr<transport::Transport>> {
    MMX_ASSIGN_OR_RETURN(std::unique_ptr<transport::InprocTransport> t,
                         transport::InprocTransport::Create(fabric, name, topts));
    return std::unique_ptr<transport::Transport>(std::move(t));
  };
  m->coordinator_side = std::thread([this, m] {
    m->session.EndFromCoordinator(coordinator::ServeWorkerSession(*cluster_, m->session.coordinator_end()));
  });
  m->worker = std::thread([this, m, wo, env] {
    absl::Status st = worker::ServeSession(wo, m->session.worker_end(), env);
    m->session.worker_end().Close();
    absl::MutexLock lock(&mu_);
    if (!st.ok() && worker_error_.ok()) {
      worker_error_ = absl::Status(st.code(), absl::StrCat("worker '", m->name, "': ", st.message()));
    }
  });
  members_.push_back(std::move(member));
  return absl::OkStatus();
}

absl::Status LocalEngine::WaitReady() {
  // The cluster's listener sets ready_; a worker's thread sets worker_error_ when it ends.
  absl::MutexLock lock(&mu_);
  auto settled = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return ready_ || !worker_error_.ok(); };
  mu_.Await(absl::Condition(&settled));
  return ready_ ? absl::OkStatus() : worker_error_;
}

LocalEngine::~LocalEngine() {
  scheduler_.reset();
  for (auto& m : members_) m->session.worker_end().Close();
  for (auto& m : members_) {
    if (m->worker.joinable()) m->worker.join();
    if (m->coordinator_side.joinable()) m->coordinator_side.join();
  }
  members_.clear();
  cluster_.reset();
  transport_.reset();
}

}  // namespace mmx::engine
