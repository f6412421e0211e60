// mmx_transport_bench: round-trip latency and one-way bandwidth of UcxTransport between two
// processes on this host, over shared memory (UCX's default choice) or TCP on loopback, or over
// TCP between two network namespaces (--client-netns/--server-netns with --net-devices naming
// their interface; bench/transport_netns.sh sets up a veth pair, shaped or not).
//
//   mmx_transport_bench [--tls shm|tcp|both] [--send-budget-us 0,50,inf]
//                       [--receive-budget-us 50] [--window 1] [--senders 1] [--slide]
//                       [--sizes 8,12288,1048576] [--iters 2000] [--bw-bytes 268435456] [--pin]
//                       [--net-devices lo] [--client-netns NS] [--server-netns NS]
//
// The parent forks a client and a server before anything touches UCX (UCX state does not
// survive fork), and the two swap worker addresses over a socketpair. For each send progress
// budget (UcxTransportOptions::send_progress_budget, in microseconds; "inf" = never sleep) and
// size (the receive budget, UcxTransportOptions::receive_progress_budget, is one value for all):
//   latency:   the client sends `size` bytes, the server receives them and sends them back;
//              median and p99 of the round trip (one-way ~ half of it).
//   bandwidth: the client sends messages of `size` bytes back to back, `window` at a time with
//              SendAll (all posted, then each waited for until UCX is done with its buffer;
//              window 1 is one Send after another), from `senders` threads at once (each its
//              share), or with --slide one thread keeping `window` in flight, posting the next
//              as the oldest completes (a window that slides, as perftest's), the server receives them all
//              and answers with one 8-byte ack; bytes / (first send .. ack). An untimed round
//              of 2 x window x senders messages before it warms the payload buffer cache.
// Everything goes through the Transport interface (envelope, mailbox, progress thread), so the
// figures include what a worker pays, not just UCX. docs/protocol.md records results.
//
// Not a test: it checks payload sizes but not contents, and its numbers depend on machine load
// (it prints /proc/loadavg before and after; --pin puts the peers on CPUs 0 and 1).
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <fstream>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/fd_io.h"
#include "transport/ucx_transport.h"

namespace mmx::transport {
namespace {

constexpr uint64_t kToken = 0xBE7C4;
constexpr PeerId kClient = 1;
constexpr PeerId kServer = 2;
constexpr uint64_t kAckKey = ~uint64_t{0};

struct Config {
  std::vector<size_t> sizes;
  std::vector<absl::Duration> budgets;
  absl::Duration receive_budget = absl::Microseconds(50);
  int window = 1;
  int senders = 1;
  bool slide = false;
  int iters = 2000;
  size_t bw_bytes = size_t{256} << 20;
  bool pin = false;
  std::string net_devices = "lo";  // UCX_NET_DEVICES for --tls tcp
  std::string client_netns, server_netns;  // network namespaces (ip netns names), "" = ours
};

double NowSeconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::string LoadAverage() {
  std::ifstream in("/proc/loadavg");
  std::string line;
  std::getline(in, line);
  return line;
}

[[noreturn]] void Die(const char* what, const absl::Status& status) {
  std::fprintf(stderr, "transport_bench: %s: %s\n", what, status.ToString().c_str());
  std::fflush(stderr);
  _exit(1);
}

// Creates a transport and connects it to the other process through `fd`.
std::unique_ptr<UcxTransport> Connect(int fd, PeerId self, PeerId other, absl::Duration budget,
                                      absl::Duration receive_budget) {
  UcxTransportOptions options;
  options.send_progress_budget = budget;
  options.receive_progress_budget = receive_budget;
  absl::StatusOr<std::unique_ptr<UcxTransport>> t =
      UcxTransport::Create(TransportOptions{self, kToken}, options);
  if (!t.ok()) Die("create", t.status());
  const std::string mine = (*t)->LocalAddress();
  const uint32_t length = static_cast<uint32_t>(mine.size());
  uint32_t their_length = 0;
  if (!WriteAll(fd, &length, 4) || !WriteAll(fd, mine.data(), length) ||
      !ReadAll(fd, &their_length, 4) || their_length > 4096) {
    Die("address exchange", absl::UnavailableError("socketpair"));
  }
  std::string theirs(their_length, '\0');
  if (!ReadAll(fd, theirs.data(), their_length)) Die("address", absl::UnavailableError("read"));
  if (absl::Status s = (*t)->Connect(other, theirs); !s.ok()) Die("connect", s);
  char token = 'c';  // both connected before the first message, or it would be dropped
  if (!WriteAll(fd, &token, 1) || !ReadAll(fd, &token, 1)) {
    Die("barrier", absl::UnavailableError("socketpair"));
  }
  return std::move(*t);
}

Message ReceiveOrDie(Transport& t, PeerId from, uint64_t key, size_t size) {
  absl::StatusOr<Message> m = t.Receive(from, key, absl::Seconds(60));
  if (!m.ok()) Die("receive", m.status());
  if (m->payload.size() != size) Die("receive", absl::DataLossError("wrong payload size"));
  return std::move(*m);
}

void SendOrDie(Transport& t, PeerId to, uint64_t key, const void* data, size_t size) {
  if (absl::Status s = t.Send(to, key, "", data, size); !s.ok()) Die("send", s);
}

int BandwidthMessages(const Config& config, size_t size) {
  return static_cast<int>(std::clamp<size_t>(config.bw_bytes / std::max<size_t>(size, 1), 16,
                                             20000));
}

// Untimed messages sent the bandwidth run's way before it: enough to have every buffer the
// run keeps in flight at once allocated and cached (transport/payload.h). Without them the
// first windows paid for fresh huge pages (2 MiB faults with compaction: 8-65 ms each window
// on this VM), a third of a 256 MiB run, which no serving worker pays past its first steps.
int WarmupMessages(const Config& config) { return 2 * config.window * config.senders; }

void RunServer(int fd, const Config& config) {
  for (absl::Duration budget : config.budgets) {
    std::unique_ptr<UcxTransport> t = Connect(fd, kServer, kClient, budget, config.receive_budget);
    uint64_t key = 0;
    for (size_t size : config.sizes) {
      const int warmup = std::max(10, config.iters / 10);
      for (int i = 0; i < warmup + config.iters; ++i, ++key) {
        Message m = ReceiveOrDie(*t, kClient, key, size);
        SendOrDie(*t, kClient, key, m.payload.data(), m.payload.size());
      }
      for (const int messages : {WarmupMessages(config), BandwidthMessages(config, size)}) {
        for (int i = 0; i < messages; ++i, ++key) ReceiveOrDie(*t, kClient, key, size);
        const uint64_t ack = key;
        SendOrDie(*t, kClient, kAckKey, &ack, sizeof(ack));
      }
    }
    char token = 'd';  // neither side closes while the other may still be pulling
    WriteAll(fd, &token, 1);
    ReadAll(fd, &token, 1);
  }
}

void RunClient(int fd, const Config& config, const char* tls) {
  for (absl::Duration budget : config.budgets) {
    std::unique_ptr<UcxTransport> t = Connect(fd, kClient, kServer, budget, config.receive_budget);
    const std::string budget_name =
        budget == absl::InfiniteDuration()
            ? "inf"
            : std::to_string(absl::ToInt64Microseconds(budget)) + "us";
    uint64_t key = 0;
    for (size_t size : config.sizes) {
      Payload payload(size, 0x5A);  // pooled: huge pages from 1 MiB, as a worker sends large rows
      const int warmup = std::max(10, config.iters / 10);
      std::vector<double> rtt_us;
      for (int i = 0; i < warmup + config.iters; ++i, ++key) {
        const double start = NowSeconds();
        SendOrDie(*t, kServer, key, payload.data(), size);
        ReceiveOrDie(*t, kServer, key, size);
        if (i >= warmup) rtt_us.push_back((NowSeconds() - start) * 1e6);
      }
      std::sort(rtt_us.begin(), rtt_us.end());
      const double p50 = rtt_us[rtt_us.size() / 2];
      const double p99 = rtt_us[rtt_us.size() * 99 / 100];

      int messages = WarmupMessages(config);
      // Sender j sends messages j, j + senders, ...: with several, one's next send leaves while
      // another waits for its completion (a sliding window, as perftest keeps one).
      auto send_share = [&](int j) {
        std::vector<int> mine;
        for (int i = j; i < messages; i += config.senders) mine.push_back(i);
        if (config.slide) {  // one thread, `window` in flight, the next posted as the oldest completes
          std::deque<UcxTransport::PostedSend> in_flight;
          for (size_t next = 0; next < mine.size() || !in_flight.empty();) {
            while (next < mine.size() && static_cast<int>(in_flight.size()) < config.window) {
              absl::StatusOr<UcxTransport::PostedSend> posted =
                  t->Post(kServer, key + static_cast<uint64_t>(mine[next++]), "", payload.data(), size);
              if (!posted.ok()) Die("send", posted.status());
              in_flight.push_back(*posted);
            }
            if (absl::Status s = t->Wait(in_flight.front()); !s.ok()) Die("send", s);
            in_flight.pop_front();
          }
          return;
        }
        for (size_t next = 0; next < mine.size();) {
          std::vector<Transport::Outgoing> batch;
          for (; next < mine.size() && static_cast<int>(batch.size()) < config.window; ++next) {
            batch.push_back({kServer, key + static_cast<uint64_t>(mine[next]), "", payload.data(), size});
          }
          if (absl::Status s = t->SendAll(batch); !s.ok()) Die("send", s);
        }
      };
      auto run = [&] {  // every sender its share, then the server's ack
        std::vector<std::thread> senders;
        for (int j = 1; j < config.senders; ++j) senders.emplace_back(send_share, j);
        send_share(0);
        for (std::thread& sender : senders) sender.join();
        key += static_cast<uint64_t>(messages);
        ReceiveOrDie(*t, kServer, kAckKey, sizeof(uint64_t));
      };
      run();  // warm-up
      messages = BandwidthMessages(config, size);
      const double start = NowSeconds();
      run();
      const double seconds = NowSeconds() - start;
      const double gbps = static_cast<double>(messages) * static_cast<double>(size) / seconds / 1e9;
      std::printf("%-4s budget %-5s %8zu B  rtt p50 %8.1f us  p99 %8.1f us  one-way ~%7.1f us  "
                  "bw %6.3f GB/s  (%d msgs)\n",
                  tls, budget_name.c_str(), size, p50, p99, p50 / 2, gbps, messages);
      std::fflush(stdout);
    }
    if (std::string info = t->DescribeEndpoint(kServer).value_or(""); !info.empty()) {
      for (absl::string_view line : absl::StrSplit(info, '\n')) {
        if (absl::StrContains(line, "lane[")) {
          std::printf("     lanes: %s\n", std::string(line).c_str());
        }
      }
    }
    char token = 'd';
    WriteAll(fd, &token, 1);
    ReadAll(fd, &token, 1);
  }
}

void Pin(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  sched_setaffinity(0, sizeof(set), &set);  // best effort: a 1-CPU machine just shares
}

// Moves this process into the network namespace `name` (/var/run/netns/NAME, made by `ip netns
// add`), before anything opens a socket. Exits on failure: the figures would be for loopback.
void EnterNetns(const std::string& name) {
  if (name.empty()) return;
  const std::string path = "/var/run/netns/" + name;
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || setns(fd, CLONE_NEWNET) != 0) {
    Die("netns", absl::FailedPreconditionError(absl::StrCat("cannot enter ", path, ": ", std::strerror(errno))));
  }
  close(fd);
  // As `ip netns exec` does: a /sys of the new namespace, where UCX looks for its devices
  // (/sys/class/net), in a mount namespace of our own.
  if (unshare(CLONE_NEWNS) != 0 || mount("", "/", nullptr, MS_SLAVE | MS_REC, nullptr) != 0 ||
      umount2("/sys", MNT_DETACH) != 0 || mount(name.c_str(), "/sys", "sysfs", 0, nullptr) != 0) {
    Die("netns", absl::FailedPreconditionError(absl::StrCat("cannot mount /sys for ", name, ": ", std::strerror(errno))));
  }
}

// Runs one client/server pair under `tls`. Returns false if either child failed.
bool RunPair(const Config& config, const std::string& tls) {
  // Set in the parent before forking, so both children's UCX reads it in ucp_config_read.
  if (tls == "tcp") {
    setenv("UCX_TLS", "tcp", 1);
    setenv("UCX_NET_DEVICES", config.net_devices.c_str(), 1);
  } else {
    unsetenv("UCX_TLS");
    unsetenv("UCX_NET_DEVICES");
  }
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0) return false;
  std::fflush(nullptr);
  const pid_t server = fork();
  if (server == 0) {
    close(fds[0]);
    EnterNetns(config.server_netns);
    if (config.pin) Pin(1);
    RunServer(fds[1], config);
    _exit(0);
  }
  const pid_t client = fork();
  if (client == 0) {
    close(fds[1]);
    EnterNetns(config.client_netns);
    if (config.pin) Pin(0);
    RunClient(fds[0], config, tls.c_str());
    std::fflush(stdout);
    _exit(0);
  }
  close(fds[0]);
  close(fds[1]);
  int server_status = 0, client_status = 0;
  waitpid(client, &client_status, 0);
  waitpid(server, &server_status, 0);
  return WIFEXITED(client_status) && WEXITSTATUS(client_status) == 0 &&
         WIFEXITED(server_status) && WEXITSTATUS(server_status) == 0;
}

}  // namespace
}  // namespace mmx::transport

int main(int argc, char** argv) {
  using namespace mmx::transport;
  CLI::App app{"mmx_transport_bench: UcxTransport latency and bandwidth between two processes"};
  std::string tls = "both", budgets = "0,50,inf", sizes = "8,12288,1048576";
  Config config;
  app.add_option("--tls", tls, "shm (UCX default on one host), tcp (loopback) or both");
  app.add_option("--send-budget-us", budgets,
                 "comma-separated send progress budgets in microseconds, or inf");
  app.add_option("--sizes", sizes, "comma-separated payload sizes in bytes");
  int64_t receive_budget_us = 50;
  app.add_option("--receive-budget-us", receive_budget_us,
                 "receive progress budget in microseconds (UcxTransportOptions)");
  app.add_option("--window", config.window, "bandwidth: sends posted at once (SendAll)");
  app.add_option("--senders", config.senders,
                 "bandwidth: client threads sending at once, each its share in windows of --window");
  app.add_flag("--slide", config.slide,
               "bandwidth: keep --window sends in flight, posting the next as the oldest completes "
               "(UcxTransport::Post/Wait) instead of SendAll batches");
  app.add_option("--iters", config.iters, "timed round trips per size");
  app.add_option("--bw-bytes", config.bw_bytes, "bytes per bandwidth run (16..20000 messages)");
  app.add_flag("--pin", config.pin, "pin client to CPU 0 and server to CPU 1");
  app.add_option("--net-devices", config.net_devices, "UCX_NET_DEVICES for --tls tcp (default lo)");
  app.add_option("--client-netns", config.client_netns, "run the client in this network namespace (ip netns)");
  app.add_option("--server-netns", config.server_netns, "run the server in this network namespace (ip netns)");
  CLI11_PARSE(app, argc, argv);
  for (absl::string_view s : absl::StrSplit(sizes, ',')) {
    size_t size = 0;
    if (!absl::SimpleAtoi(s, &size)) {
      std::fprintf(stderr, "bad size '%s'\n", std::string(s).c_str());
      return 2;
    }
    config.sizes.push_back(size);
  }
  for (absl::string_view b : absl::StrSplit(budgets, ',')) {
    int64_t us = 0;
    if (b == "inf") {
      config.budgets.push_back(absl::InfiniteDuration());
    } else if (absl::SimpleAtoi(b, &us) && us >= 0) {
      config.budgets.push_back(absl::Microseconds(us));
    } else {
      std::fprintf(stderr, "bad budget '%s'\n", std::string(b).c_str());
      return 2;
    }
  }
  config.receive_budget = absl::Microseconds(receive_budget_us);
  if (config.budgets.empty() || config.sizes.empty() || config.iters <= 0 || config.window <= 0 || config.senders <= 0 ||
      receive_budget_us < 0) {
    std::fprintf(stderr, "nothing to run\n");
    return 2;
  }
  std::vector<std::string> runs;
  if (tls == "shm" || tls == "both") runs.push_back("shm");
  if (tls == "tcp" || tls == "both") runs.push_back("tcp");

  std::printf("loadavg before: %s\n", LoadAverage().c_str());
  bool ok = true;
  for (const std::string& run : runs) ok = RunPair(config, run) && ok;
  std::printf("loadavg after:  %s\n", LoadAverage().c_str());
  return ok ? 0 : 1;
}
