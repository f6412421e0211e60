#include "worker/worker_process.h"

#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <string>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/control.grpc.pb.h"
#include "model/checkpoint_fingerprint.h"
#include "model/device_spec.h"
#include "model/stage_compute.h"
#include "transport/ucx_transport.h"
#include "worker/loaded_shard.h"
#include "transport/message_keys.h"
#include "worker/progress.h"
#include "worker/stage_executor.h"
#include "worker/step_collector.h"

namespace mmx::worker {

using transport::InboxKey;
using transport::MessageKind;
using transport::ReplyKey;
namespace {

using Stream = grpc::ClientReaderWriter<v1::WorkerMessage, v1::CoordinatorMessage>;

// Read bandwidth of this machine in GB/s, measured over a short scan (reported at Register so
// the planner can place work by speed).
double MeasureReadBandwidth() {
  const size_t n = size_t{64} << 20 >> 2;  // 64 MiB of floats
  std::vector<float> data(n, 1.f);
  float sum = 0;
  const auto t0 = std::chrono::steady_clock::now();
  for (int rep = 0; rep < 2; ++rep) {
    for (size_t i = 0; i < n; ++i) sum += data[i];
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return sum > 0 ? 2.0 * n * sizeof(float) / s / 1e9 : 0;
}

int64_t MemoryBytes() { return static_cast<int64_t>(sysconf(_SC_PHYS_PAGES)) * sysconf(_SC_PAGESIZE); }

// MemAvailable from /proc/meminfo (what the kernel can hand out without swapping), measured
// after loading: the weights' pages are counted as used or as reclaimable page cache.
int64_t AvailableMemoryBytes() {
  FILE* f = std::fopen("/proc/meminfo", "r");
  if (!f) return 0;
  char line[256];
  long long kb = 0;
  while (std::fgets(line, sizeof(line), f)) {
    if (std::sscanf(line, "MemAvailable: %lld kB", &kb) == 1) break;
  }
  std::fclose(f);
  return static_cast<int64_t>(kb) * 1024;
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0) return "";
  return name;
}

// The cores this process may run on (its affinity mask, as taskset or a container sets it).
int UsableCores() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof(set), &set) == 0) return CPU_COUNT(&set);
  return static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
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

}  // namespace

namespace {
constexpr const char* kLostCoordinator = "lost the coordinator (session ended)";
}  // namespace

bool IsCoordinatorLost(const absl::Status& status) {
  return absl::IsUnavailable(status) && status.message() == kLostCoordinator;
}

absl::Status RunWorker(const WorkerOptions& o) {
  if (o.threads > 0) ThreadPool::SetDefaultThreads(o.threads);
  // Workers share cores with each other and wait on the network between kernels: spin little.
  ThreadPool::SetDefaultSpinMicros(100);
  MMX_ASSIGN_OR_RETURN(const model::DeviceSpec device, model::ParseDeviceSpec(o.device));
  // A GPU worker offers its GPU's memory and bandwidth to the planner; checking the GPU before
  // registering also fails a worker without one (or a build without CUDA) at once.
  std::optional<model::DeviceInfo> gpu;
  if (device.is_cuda()) {
    MMX_ASSIGN_OR_RETURN(gpu, model::QueryCudaDevice(device));
    std::fprintf(stderr, "mmx-worker %s: %s, %.1f GiB free of %.1f GiB, %.0f GB/s\n", o.name.c_str(),
                 gpu->name.c_str(), gpu->free_bytes / double(1 << 30), gpu->total_bytes / double(1 << 30),
                 gpu->bandwidth_gbs);
  }
  // Short reconnect backoff: a worker started before its coordinator should join within a
  // fraction of a second of it coming up, not after gRPC's default backoff of seconds.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  auto channel = grpc::CreateCustomChannel(o.coordinator, grpc::InsecureChannelCredentials(), args);
  const auto give_up = std::chrono::system_clock::now() + absl::ToChronoSeconds(o.connect_timeout);
  bool said_waiting = false;
  while (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(1))) {
    if (!said_waiting) {
      std::fprintf(stderr, "mmx-worker %s: waiting for the coordinator at %s\n", o.name.c_str(), o.coordinator.c_str());
      said_waiting = true;
    }
    if (std::chrono::system_clock::now() > give_up) {
      return absl::UnavailableError(absl::StrCat("cannot reach the coordinator at ", o.coordinator, " after ",
                                                 absl::FormatDuration(o.connect_timeout),
                                                 "; is mmx-coord serve running there?"));
    }
  }

  auto stub = v1::Control::NewStub(channel);
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub->Session(&context);
  std::mutex write_mu;
  auto write = [&](const v1::WorkerMessage& m) {
    std::lock_guard<std::mutex> lock(write_mu);
    return stream->Write(m);
  };

  v1::WorkerMessage hello;
  v1::Register* reg = hello.mutable_register_();
  reg->set_protocol_version(v1::PROTOCOL_VERSION_CURRENT);
  reg->set_name(o.name);
  reg->set_device(device.ToString());
  reg->set_memory_bytes(gpu ? gpu->free_bytes : MemoryBytes());
  reg->set_mem_bandwidth_gbs(gpu ? gpu->bandwidth_gbs : MeasureReadBandwidth());
  reg->set_threads(ThreadPool::Default().num_threads());
  reg->set_host(HostName());
  reg->set_host_cores(UsableCores());
  if (!write(hello)) return absl::UnavailableError("the coordinator closed the session at Register");

  v1::CoordinatorMessage msg;
  if (!stream->Read(&msg)) {
    grpc::Status st = stream->Finish();
    return absl::UnavailableError(absl::StrCat("the coordinator ended the session: ", st.error_message()));
  }
  if (msg.has_rejected()) return absl::FailedPreconditionError(msg.rejected().message());
  if (!msg.has_assignment()) return absl::InternalError("expected an Assignment from the coordinator");
  const v1::Assignment assignment = msg.assignment();

  MMX_ASSIGN_OR_RETURN(plan::ShardConfig shard, plan::ParseShardConfig(assignment.shard_yaml(), "assigned shard"));
  const plan::WorkerShard* mine = shard.Find(o.name);
  if (mine == nullptr) return absl::InternalError("the assigned shard config does not name this worker");
  MMX_ASSIGN_OR_RETURN(const model::ExpertDType expert_dtype, model::ParseExpertDType(shard.expert_dtype));

  transport::TransportOptions topts;
  topts.self = assignment.peer_id();
  topts.cluster_token = assignment.cluster_token();
  // Senders leave UCX progress to the progress thread: a worker has several threads that send,
  // and UCX's multi-thread mode guards the worker with a spinlock, so senders progressing it
  // themselves spin against each other (measured: a fifth of a worker's CPU in the lock).
  transport::UcxTransportOptions ucx_options;
  ucx_options.send_progress_budget = absl::ZeroDuration();
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<transport::UcxTransport> data_plane,
                       transport::UcxTransport::Create(topts, ucx_options));

  // Load, reporting progress to the terminal and (at most every 100 ms) to the coordinator. A
  // GPU worker does not page its tensors into host memory first: the upload reads them once.
  ProgressReporter reporter(absl::StrCat("mmx-worker ", o.name, ": loading"));
  auto last_sent = std::chrono::steady_clock::now() - std::chrono::seconds(1);
  auto send_progress = [&](int64_t done, int64_t total) {
    const auto now = std::chrono::steady_clock::now();
    if (now - last_sent > std::chrono::milliseconds(100) || done == total) {
      v1::WorkerMessage p;
      p.mutable_progress()->set_bytes_done(done);
      p.mutable_progress()->set_bytes_total(total);
      write(p);
      last_sent = now;
    }
  };
  absl::StatusOr<std::unique_ptr<LoadedShard>> loaded = LoadShard(
      assignment.model_dir(), *mine, expert_dtype,
      [&](int64_t done, int64_t total) {
        reporter.Update(done, total);
        send_progress(done, total);
      },
      /*page_in=*/!device.is_cuda());
  if (!loaded.ok()) {
    v1::WorkerMessage failed;
    failed.mutable_failed()->set_message(std::string(loaded.status().message()));
    write(failed);
    return loaded.status();
  }
  reporter.Done();
  std::unique_ptr<LoadedShard> shard_weights = *std::move(loaded);
  const kernels::ActivationPrecision precision =
      o.bf16_activations ? kernels::ActivationPrecision::kBf16 : kernels::ActivationPrecision::kFp32;
  if (device.is_cuda()) {
    ProgressReporter uploading(absl::StrCat("mmx-worker ", o.name, ": uploading to ", device.ToString()));
    absl::Status placed = PlaceShard(*shard_weights, device, precision, [&](int64_t done, int64_t total) {
      uploading.Update(done, total);
      send_progress(done, total);
    });
    if (!placed.ok()) {
      v1::WorkerMessage failed;
      failed.mutable_failed()->set_message(std::string(placed.message()));
      write(failed);
      return placed;
    }
    uploading.Done();
  }

  v1::WorkerMessage ready;
  ready.mutable_ready()->set_checkpoint_fingerprint(model::CheckpointFingerprint(*shard_weights->checkpoint));
  ready.mutable_ready()->set_data_address(data_plane->LocalAddress());
  // MemAvailable counts the mapped weights' page cache as reclaimable; they must stay resident.
  int64_t state_memory = std::max<int64_t>(0, AvailableMemoryBytes() - shard_weights->weight_bytes) / 10 * 9;
  if (device.is_cuda()) {
    // The sequence state lives in GPU memory: what is free there after the weights.
    MMX_ASSIGN_OR_RETURN(const model::DeviceInfo after, model::QueryCudaDevice(device));
    state_memory = after.free_bytes / 10 * 9;
  }
  ready.mutable_ready()->set_state_memory_bytes(state_memory);
  write(ready);

  Serving serving;
  std::atomic<bool> stop{false};
  std::thread step_thread([&] {
    kernels::ScopedActivationPrecision scoped_precision(precision);
    StepCollector collector(data_plane.get(), absl::Seconds(2));
    while (!stop.load()) {
      auto group = collector.Next(absl::Milliseconds(500));
      if (!group.ok()) {
        if (absl::IsCancelled(group.status())) return;
        continue;
      }
      std::shared_ptr<StageExecutor> executor = serving.Get();
      if (!executor) continue;
      absl::Status st = executor->HandleSteps(*group);
      if (!st.ok()) std::fprintf(stderr, "mmx-worker %s: step failed: %s\n", o.name.c_str(), std::string(st.message()).c_str());
    }
  });
  std::thread expert_thread([&] {
    kernels::ScopedActivationPrecision scoped_precision(precision);
    while (!stop.load()) {
      auto m = data_plane->ReceiveAny(InboxKey(MessageKind::kDispatch), absl::Milliseconds(500));
      if (!m.ok()) {
        if (absl::IsCancelled(m.status())) return;
        continue;
      }
      absl::Status st = HandleDispatch(*shard_weights, data_plane.get(), *m);
      if (!st.ok()) std::fprintf(stderr, "mmx-worker %s: dispatch failed: %s\n", o.name.c_str(), std::string(st.message()).c_str());
    }
  });

  absl::Status result = absl::UnavailableError(kLostCoordinator);
  while (stream->Read(&msg)) {
    if (msg.has_rejected()) {
      result = absl::FailedPreconditionError(msg.rejected().message());
      break;
    }
    if (msg.has_peer_lost()) {
      // Fail whatever waits on the lost peer now, rather than at a timeout.
      data_plane->Disconnect(msg.peer_lost().peer_id());
      serving.Set(nullptr);
      std::fprintf(stderr, "mmx-worker %s: peer '%s' lost; waiting for a new peer table\n", o.name.c_str(),
                   msg.peer_lost().name().c_str());
      continue;
    }
    if (!msg.has_peers()) continue;
    const v1::PeerTable& table = msg.peers();
    absl::Status st;
    for (const v1::Peer& p : table.peers()) {
      if (p.peer_id() == assignment.peer_id()) continue;
      st.Update(data_plane->Connect(p.peer_id(), p.data_address()));
    }
    absl::StatusOr<Routes> routes =
        BuildRoutes(shard, table, shard_weights->config().num_hidden_layers, shard_weights->config().num_local_experts);
    st.Update(routes.status());
    if (!st.ok()) {
      v1::WorkerMessage failed;
      failed.mutable_failed()->set_message(absl::StrCat("cannot apply the peer table: ", st.message()));
      write(failed);
      continue;
    }
    // A new table voids every sequence: fresh executor, fresh state.
    auto executor = std::make_shared<StageExecutor>(shard_weights.get(), data_plane.get(), assignment.peer_id(),
                                                    *std::move(routes), o.reply_timeout);
    executor->SetSampleableRanges({assignment.sampleable_ranges().begin(), assignment.sampleable_ranges().end()});
    serving.Set(std::move(executor));
    v1::WorkerMessage applied;
    applied.mutable_peers_applied()->set_version(table.version());
    write(applied);
    std::fprintf(stderr, "mmx-worker %s: serving (peer table v%llu)\n", o.name.c_str(),
                 static_cast<unsigned long long>(table.version()));
  }
  stop.store(true);
  data_plane->Shutdown();
  step_thread.join();
  expert_thread.join();
  context.TryCancel();
  return result;
}

}  // namespace mmx::worker
