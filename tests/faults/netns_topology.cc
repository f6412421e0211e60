#include "tests/faults/netns_topology.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "tests/testing/process.h"

namespace mmx::testing {
namespace {

constexpr char kIp[] = "/usr/sbin/ip";
constexpr char kNft[] = "/usr/sbin/nft";
constexpr char kHub[] = "mmxf-hub";

absl::Status Run(const std::vector<std::string>& argv) {
  const ProcessResult r = RunToExit(argv, absl::Seconds(20));
  if (r.exit_code == 0) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(absl::StrJoin(argv, " "), ": ", r.output));
}

}  // namespace

bool NetnsTopology::HasNft() { return access(kNft, X_OK) == 0; }

void NetnsTopology::RemoveAll() {
  const ProcessResult list = RunToExit({kIp, "netns", "list"}, absl::Seconds(20));
  for (absl::string_view line : absl::StrSplit(list.output, '\n')) {
    const std::string name(line.substr(0, line.find(' ')));
    if (name.rfind("mmxf-", 0) == 0) (void)RunToExit({kIp, "netns", "del", name}, absl::Seconds(20));
  }
}

absl::StatusOr<std::unique_ptr<NetnsTopology>> NetnsTopology::Create(const std::vector<std::string>& nodes) {
  if (geteuid() != 0) return absl::FailedPreconditionError("not root: network namespaces need CAP_SYS_ADMIN");
  if (access(kIp, X_OK) != 0) return absl::FailedPreconditionError("no /usr/sbin/ip (iproute2)");
  RemoveAll();
  std::unique_ptr<NetnsTopology> t(new NetnsTopology());
  t->original_ns_ = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
  absl::Status st = t->Build(nodes);
  if (!st.ok()) return st;  // the destructor removes what was made
  return t;
}

absl::Status NetnsTopology::Build(const std::vector<std::string>& nodes) {
  if (absl::Status st = Run({kIp, "netns", "add", kHub}); !st.ok()) return st;
  for (const auto& argv : std::vector<std::vector<std::string>>{
           {kIp, "-n", kHub, "link", "add", "br0", "type", "bridge"},
           {kIp, "-n", kHub, "link", "set", "br0", "up"},
           {kIp, "-n", kHub, "link", "set", "lo", "up"}}) {
    if (absl::Status st = Run(argv); !st.ok()) return st;
  }
  int i = 0;
  for (const std::string& node : nodes) {
    index_[node] = ++i;
    const std::string ns = Namespace(node), hub_end = absl::StrCat("mmxf", i);
    for (const auto& argv : std::vector<std::vector<std::string>>{
             {kIp, "netns", "add", ns},
             {kIp, "link", "add", hub_end, "netns", kHub, "type", "veth", "peer", "name", "eth0", "netns", ns},
             {kIp, "-n", kHub, "link", "set", hub_end, "master", "br0"},
             {kIp, "-n", kHub, "link", "set", hub_end, "up"},
             {kIp, "-n", ns, "addr", "add", Address(node) + "/24", "dev", "eth0"},
             {kIp, "-n", ns, "link", "set", "eth0", "up"},
             {kIp, "-n", ns, "link", "set", "lo", "up"}}) {
      if (absl::Status st = Run(argv); !st.ok()) return st;
    }
  }
  return absl::OkStatus();
}

NetnsTopology::~NetnsTopology() {
  Leave();
  if (original_ns_ >= 0) close(original_ns_);
  RemoveAll();
}

std::string NetnsTopology::Namespace(const std::string& node) const { return absl::StrCat("mmxf-", index_.at(node)); }

std::string NetnsTopology::Address(const std::string& node) const { return absl::StrCat("10.77.0.", 10 + index_.at(node)); }

std::vector<std::string> NetnsTopology::Prefix(const std::string& node) const {
  return {kIp, "netns", "exec", Namespace(node), "/usr/bin/env", "UCX_TLS=tcp", "UCX_NET_DEVICES=eth0"};
}

absl::Status NetnsTopology::Enter(const std::string& node) {
  const std::string path = "/var/run/netns/" + Namespace(node);
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return absl::FailedPreconditionError(absl::StrCat("cannot open ", path));
  const int rc = setns(fd, CLONE_NEWNET);
  close(fd);
  if (rc != 0) return absl::FailedPreconditionError(absl::StrCat("setns into ", path, " failed"));
  return absl::OkStatus();
}

void NetnsTopology::Leave() {
  if (original_ns_ >= 0) (void)setns(original_ns_, CLONE_NEWNET);
}

absl::Status NetnsTopology::SetLink(const std::string& node, bool up) {
  return Run({kIp, "-n", kHub, "link", "set", absl::StrCat("mmxf", index_.at(node)), up ? "up" : "down"});
}

absl::Status NetnsTopology::DropRandomly(const std::string& node, int percent) {
  const std::vector<std::string> nft = {kIp, "netns", "exec", Namespace(node), kNft};
  auto run = [&](std::vector<std::string> args) {
    std::vector<std::string> argv = nft;
    argv.insert(argv.end(), args.begin(), args.end());
    return Run(argv);
  };
  if (percent == 0) return run({"delete", "table", "inet", "mmxf"});
  // numgen random mod 100 < percent: each packet dropped with that probability.
  for (const auto& args : std::vector<std::vector<std::string>>{
           {"add", "table", "inet", "mmxf"},
           {"add", "chain", "inet", "mmxf", "in", "{ type filter hook input priority 0; }"},
           {"add", "chain", "inet", "mmxf", "out", "{ type filter hook output priority 0; }"},
           {"add", "rule", "inet", "mmxf", "in", "numgen", "random", "mod", "100", "<", std::to_string(percent), "drop"},
           {"add", "rule", "inet", "mmxf", "out", "numgen", "random", "mod", "100", "<", std::to_string(percent), "drop"}}) {
    if (absl::Status st = run(args); !st.ok()) return st;
  }
  return absl::OkStatus();
}

}  // namespace mmx::testing
