#include "worker/worker_process.h"

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "model/device_spec.h"
#include "model/stage_compute.h"
#include "parallel/stage_compute_factory.h"
#include "transport/net_interface.h"
#include "transport/ucx_transport.h"
#include "worker/grpc_control_session.h"

namespace mmx::worker {

absl::Status RunWorker(const WorkerOptions& o, LeaveRequest* leave, ShardCache* cache) {
  if (o.threads > 0) ThreadPool::SetDefaultThreads(o.threads);
  // Workers share cores with each other and wait on the network between kernels: spin little.
  ThreadPool::SetDefaultSpinMicros(100);
  // A bad or unusable device fails at once, before the coordinator is contacted.
  MMX_ASSIGN_OR_RETURN(const model::DeviceSpec device, model::ParseDeviceSpec(o.device));
  if (device.is_cuda()) MMX_RETURN_IF_ERROR(parallel::QueryCudaDevice(device).status());
  const std::string prefix = absl::StrCat("mmx-worker ", o.name, ": ");
  WorkerEnvironment env;
  env.leave = leave;
  env.shard_cache = cache;
  env.log = [prefix](const std::string& line) { std::fprintf(stderr, "%s%s\n", prefix.c_str(), line.c_str()); };
  // The data plane listens where the coordinator is reachable, not on every interface.
  std::string net_devices = o.data_interface;
  if (net_devices.empty()) {
    absl::StatusOr<std::string> reaching = transport::InterfaceReaching(o.coordinator);
    if (reaching.ok()) {
      net_devices = transport::DataPlaneDevices(*reaching);
    } else {
      env.log(absl::StrCat("data plane on every interface: ", reaching.status().message(),
                           " (give --data-interface)"));
    }
  }
  // Until the first peer table says whether this host's cores are shared (automatic busy-poll,
  // worker_runtime.h), waiting threads sleep at once: with four workers sharing two cores
  // (bench/ab_layouts.sh), 50 us of spinning per wait cost batch-1 decode 5-20% (docs/
  // benchmarks.md, issue 17); a worker with a core to spare gains.
  const absl::Duration busy_poll = o.busy_poll.value_or(absl::ZeroDuration());
  env.make_transport = [net_devices, busy_poll](const transport::TransportOptions& topts)
      -> absl::StatusOr<std::unique_ptr<transport::Transport>> {
    transport::UcxTransportOptions ucx_options;
    ucx_options.send_progress_budget = busy_poll;
    ucx_options.receive_progress_budget = busy_poll;
    ucx_options.net_devices = net_devices;
    MMX_ASSIGN_OR_RETURN(std::unique_ptr<transport::UcxTransport> ucx, transport::UcxTransport::Create(topts, ucx_options));
    return std::unique_ptr<transport::Transport>(std::move(ucx));
  };
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<ControlSession> session,
                       ConnectControlSession(o.coordinator, o.tls, o.join_token, o.connect_timeout, env.log));
  return ServeSession(o, *session, env);
}

}  // namespace mmx::worker
