#include "tests/testing/local_cluster.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/str_cat.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "plan/shard_config.h"
#include "tests/testing/process.h"

extern char** environ;

namespace mmx::testing {
namespace {

const std::string kBin = std::string(MMX_BINARY_DIR) + "/bin/";

// Reserves a loopback port for the cluster's life: bound with SO_REUSEPORT (never listening), so
// no other process can take it while the coordinator (gRPC sets SO_REUSEPORT too) binds and
// listens on it, and binds it again after a restart. Returns the socket (-1 on failure).
int ReservePort(int* port) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    close(fd);
    return -1;
  }
  *port = ntohs(addr.sin_port);
  return fd;
}

}  // namespace

std::vector<std::string> WorkerNames(const std::string& shard_yaml) {
  std::vector<std::string> names;
  auto shard = plan::ParseShardConfig(shard_yaml);
  if (shard.ok()) {
    for (const auto& w : shard->workers) names.push_back(w.name);
  }
  return names;
}

pid_t LocalCluster::Spawn(const std::string& name, const std::vector<std::string>& argv, const std::string& cwd) {
  const std::string log = dir_ + "/" + name + ".log";
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&actions, STDOUT_FILENO, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  if (!cwd.empty()) posix_spawn_file_actions_addchdir_np(&actions, cwd.c_str());
  std::vector<std::string> full;
  if (placement_) full = placement_->prefix(name);
  full.insert(full.end(), argv.begin(), argv.end());
  std::vector<char*> args;
  for (const std::string& a : full) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  posix_spawn(&pid, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  pids_[name] = pid;
  return pid;
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Start(const std::string& shard_yaml, bool workers_first,
                                                                  int threads_per_worker, const std::string& cwd,
                                                                  bool start_workers) {
  return StartWith(shard_yaml, {}, workers_first, threads_per_worker, cwd, start_workers);
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::StartPlaced(const std::string& shard_yaml,
                                                                        std::vector<std::string> coordinator_args,
                                                                        Placement placement) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->placement_ = std::move(placement);
  return Launch(std::move(c), shard_yaml, std::move(coordinator_args), false, 1, "", true);
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::StartWith(const std::string& shard_yaml,
                                                                      std::vector<std::string> coordinator_args,
                                                                      bool workers_first, int threads_per_worker,
                                                                      const std::string& cwd, bool start_workers) {
  return Launch(std::unique_ptr<LocalCluster>(new LocalCluster()), shard_yaml, std::move(coordinator_args),
                workers_first, threads_per_worker, cwd, start_workers);
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::StartSecured(
    const std::string& shard_yaml, std::vector<std::string> coordinator_args, std::vector<std::string> worker_args,
    std::shared_ptr<grpc::ChannelCredentials> credentials) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  c->worker_args_ = std::move(worker_args);
  c->credentials_ = std::move(credentials);
  return Launch(std::move(c), shard_yaml, std::move(coordinator_args), false, 1, "", true);
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::StartSplitPlanes(const std::string& shard_yaml) {
  std::unique_ptr<LocalCluster> c(new LocalCluster());
  int port = 0;
  c->control_port_fd_ = ReservePort(&port);
  if (c->control_port_fd_ < 0) return absl::InternalError("cannot reserve a loopback port");
  c->control_address_ = absl::StrCat("127.0.0.1:", port);
  const std::string control = c->control_address_;
  return Launch(std::move(c), shard_yaml, {"--control-listen", control}, false, 1, "", true);
}

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::Launch(std::unique_ptr<LocalCluster> c,
                                                                   const std::string& shard_yaml,
                                                                   std::vector<std::string> coordinator_args,
                                                                   bool workers_first, int threads_per_worker,
                                                                   const std::string& cwd, bool start_workers) {
  c->threads_ = threads_per_worker;
  c->cwd_ = cwd;
  char tmpl[] = "/tmp/mmx-cluster-XXXXXX";
  if (mkdtemp(tmpl) == nullptr) return absl::InternalError("mkdtemp failed");
  c->dir_ = tmpl;
  {
    std::ofstream out(c->dir_ + "/shard.yaml");
    out << shard_yaml;
  }
  if (c->placement_) {
    c->address_ = c->placement_->coordinator_address;
  } else {
    int port = 0;
    c->port_fd_ = ReservePort(&port);
    if (c->port_fd_ < 0) return absl::InternalError("cannot reserve a loopback port");
    c->address_ = absl::StrCat("127.0.0.1:", port);
  }

  c->coordinator_argv_ = {kBin + "mmx-coord", "serve", "--shard-config", c->dir_ + "/shard.yaml", "--listen", c->address_,
                          // Ping-pong always, even though test workers share this machine's cores.
                          "--micro-batches", "2"};
  // Golden-exact (an fp32 KV cache) unless the test asks for another.
  if (std::find(coordinator_args.begin(), coordinator_args.end(), "--kv-dtype") == coordinator_args.end()) {
    c->coordinator_argv_.insert(c->coordinator_argv_.end(), {"--kv-dtype", "fp32"});
  }
  c->coordinator_argv_.insert(c->coordinator_argv_.end(), coordinator_args.begin(), coordinator_args.end());
  // Namespaces of the test's own (tests/faults): a private network, plain text allowed.
  if (c->placement_) c->coordinator_argv_.push_back("--insecure");
  auto start_coordinator = [&] { c->StartCoordinator(); };
  if (!workers_first) start_coordinator();
  for (const std::string& name : start_workers ? WorkerNames(shard_yaml) : std::vector<std::string>{}) {
    absl::Status st = c->StartWorker(name);
    if (!st.ok()) return st;
  }
  if (workers_first) start_coordinator();
  // The coordinator may not listen yet: keep gRPC's reconnect backoff short so polling for
  // readiness does not wait out multi-second backoffs.
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 500);
  c->channel_ = grpc::CreateCustomChannel(
      c->address_, c->credentials_ ? c->credentials_ : grpc::InsecureChannelCredentials(), args);
  c->stub_ = v1::Inference::NewStub(c->channel_);
  return c;
}

void LocalCluster::StartCoordinator() { Spawn("coordinator", coordinator_argv_, cwd_); }

absl::StatusOr<std::unique_ptr<LocalCluster>> LocalCluster::StartPlanned(const std::string& model_dir,
                                                                         const std::vector<std::string>& workers,
                                                                         int threads_per_worker) {
  // An empty shard config text starts no workers; the coordinator is replaced below.
  auto c = Start("", false, threads_per_worker, "", /*start_workers=*/false);
  if (!c.ok()) return c.status();
  (*c)->KillWorker("coordinator");
  (*c)->Spawn("coordinator", {kBin + "mmx-coord", "serve", "--model", model_dir, "--expect-workers",
                              std::to_string(workers.size()), "--max-context", "4096", "--kv-dtype", "fp32",
                              "--listen", (*c)->address_},
              "");
  for (const std::string& name : workers) {
    absl::Status st = (*c)->StartWorker(name);
    if (!st.ok()) return st;
  }
  return c;
}

absl::Status LocalCluster::StartWorker(const std::string& name) {
  std::vector<std::string> argv = {kBin + "mmx-worker", "--coordinator", control_address(), "--name", name, "--threads",
                                   std::to_string(threads_), "--connect-timeout", "60"};
  argv.insert(argv.end(), worker_args_.begin(), worker_args_.end());
  Spawn(name, argv, cwd_);
  return absl::OkStatus();
}

absl::Status LocalCluster::StartStandby(const std::string& name) {
  std::vector<std::string> argv = {kBin + "mmx-worker", "--coordinator", control_address(), "--name", name, "--standby",
                                   "--threads", std::to_string(threads_), "--connect-timeout", "60"};
  argv.insert(argv.end(), worker_args_.begin(), worker_args_.end());
  Spawn(name, argv, cwd_);
  return absl::OkStatus();
}

void LocalCluster::KillWorker(const std::string& name) {
  auto it = pids_.find(name);
  if (it == pids_.end()) return;
  kill(it->second, SIGKILL);
  waitpid(it->second, nullptr, 0);
  pids_.erase(it);
}

absl::StatusOr<int> LocalCluster::WaitExit(const std::string& name, absl::Duration timeout) {
  auto it = pids_.find(name);
  if (it == pids_.end()) return absl::NotFoundError(absl::StrCat("no process '", name, "'"));
  const pid_t pid = it->second;
  const absl::Time give_up = absl::Now() + timeout;
  int status = 0;
  // waitpid has no timeout: poll it (a child's exit has no event a test can wait on otherwise).
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (absl::Now() > give_up) {
      KillWorker(name);
      return absl::DeadlineExceededError(absl::StrCat("'", name, "' did not exit within ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  pids_.erase(it);
  if (!WIFEXITED(status)) return absl::InternalError(absl::StrCat("'", name, "' died of signal ", WTERMSIG(status)));
  return WEXITSTATUS(status);
}

void LocalCluster::Signal(const std::string& name, int signal) {
  auto it = pids_.find(name);
  if (it != pids_.end()) kill(it->second, signal);
}

LocalCluster::~LocalCluster() {
  for (auto& [name, pid] : pids_) kill(pid, SIGKILL);
  for (auto& [name, pid] : pids_) waitpid(pid, nullptr, 0);
  if (port_fd_ >= 0) close(port_fd_);
  if (control_port_fd_ >= 0) close(control_port_fd_);
  // The shard config and the logs go with the cluster (a failing test prints the logs it needs
  // first); MMX_KEEP_TEST_CLUSTERS=1 keeps them for a look afterwards.
  const char* keep = std::getenv("MMX_KEEP_TEST_CLUSTERS");
  if (!dir_.empty() && (keep == nullptr || std::string(keep) != "1")) {
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }
}

std::string LocalCluster::Log(const std::string& name) const { return ReadFile(dir_ + "/" + name + ".log"); }

absl::StatusOr<v1::ClusterStatus> LocalCluster::Status() {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(2));
  context.set_wait_for_ready(true);  // the coordinator may still be starting
  v1::ClusterStatus status;
  grpc::Status st = stub_->GetClusterStatus(&context, v1::GetClusterStatusRequest(), &status);
  if (!st.ok()) return absl::UnavailableError(st.error_message());
  return status;
}

absl::Status LocalCluster::WaitWorkerState(const std::string& name, v1::WorkerState state, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "no status";
  while (absl::Now() < deadline) {
    absl::StatusOr<v1::ClusterStatus> status = Status();
    if (status.ok()) {
      for (const v1::WorkerStatus& w : status->workers()) {
        if (w.name() != name) continue;
        if (w.state() == state) return absl::OkStatus();
        last = v1::WorkerState_Name(w.state());
      }
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat("worker '", name, "' not ", v1::WorkerState_Name(state), " after ",
                                                  absl::FormatDuration(timeout), " (", last, ")"));
}

absl::Status LocalCluster::WaitReady(absl::Duration timeout) {
  // The coordinator's health service says SERVING once the cluster is ready: watch it. A watch
  // that ends UNAVAILABLE met a coordinator not up yet (or one just killed): watch again.
  const absl::Time deadline = absl::Now() + timeout;
  auto health = grpc::health::v1::Health::NewStub(channel_);
  grpc::Status ended;
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(deadline));
    context.set_wait_for_ready(true);
    auto watch = health->Watch(&context, grpc::health::v1::HealthCheckRequest());
    grpc::health::v1::HealthCheckResponse response;
    while (watch->Read(&response)) {
      if (response.status() == grpc::health::v1::HealthCheckResponse::SERVING) {
        context.TryCancel();
        (void)watch->Finish();
        return absl::OkStatus();
      }
    }
    ended = watch->Finish();
    if (ended.error_code() != grpc::StatusCode::UNAVAILABLE) break;
  }
  return absl::DeadlineExceededError(absl::StrCat("cluster not ready after ", absl::FormatDuration(timeout), " (",
                                                  ended.error_message(), "); coordinator log:\n", Log("coordinator")));
}

absl::StatusOr<Generation> GenerateOnce(v1::Inference::Stub& stub, const std::vector<int32_t>& prompt,
                                        int max_tokens, int logprobs, absl::Duration timeout) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + absl::ToChronoSeconds(timeout));
  v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_logprobs(logprobs);
  auto reader = stub.Generate(&context, request);
  Generation g;
  v1::GenerateResponse response;
  while (reader->Read(&response)) {
    g.tokens.insert(g.tokens.end(), response.token_ids().begin(), response.token_ids().end());
    g.logprobs.insert(g.logprobs.end(), response.logprobs().begin(), response.logprobs().end());
    if (!response.finish_reason().empty()) g.finish_reason = response.finish_reason();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  return g;
}

}  // namespace mmx::testing
