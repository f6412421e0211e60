// Bad input at the control plane: each gives a clear message and a non-zero exit, and the
// coordinator keeps serving.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/shards.h"
#include "tests/testing/local_cluster.h"

namespace mmx {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

const std::string kModel = testing::GoldenDir();
const std::string kBin = std::string(MMX_BINARY_DIR) + "/bin/";

std::string OneWorker(const std::string& model) { return testing::OneWorkerShard(model); }

int CountLines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

TEST(ControlTest, UnknownWorkerNameIsRefusedWithTheKnownNames) {
  auto cluster = testing::LocalCluster::Start(OneWorker(kModel));
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok());
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", (*cluster)->address(), "--name", "bogus"},
                              absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("unknown worker name 'bogus'; the shard config names: all"));
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  absl::StatusOr<v1::ClusterStatus> status = (*cluster)->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->ready());
}

TEST(ControlTest, SecondWorkerClaimingALiveNameIsRefused) {
  auto cluster = testing::LocalCluster::Start(OneWorker(kModel));
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok());
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", (*cluster)->address(), "--name", "all"},
                              absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("'all' is already claimed by a live worker"));
  absl::StatusOr<v1::ClusterStatus> status = (*cluster)->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->ready());
}

TEST(ControlTest, WorkersWithoutTheJoinTokenAreRefusedAndLoggedWhileTheClusterServes) {
  const std::string right = testing::TempPath("join-right");
  const std::string wrong = testing::TempPath("join-wrong");
  std::ofstream(right) << "right-token-0123456789abcdef\n";
  std::ofstream(wrong) << "wrong-token-0123456789abcdef\n";
  auto cluster = testing::LocalCluster::StartSecured(OneWorker(kModel), {"--join-token-file", right},
                                                     {"--join-token-file", right},
                                                     grpc::InsecureChannelCredentials());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  const std::vector<std::string> worker = {kBin + "mmx-worker", "--coordinator", (*cluster)->address(),
                                           "--name", "all", "--connect-timeout", "20"};
  auto none = testing::RunToExit(worker, absl::Seconds(30));
  EXPECT_EQ(none.exit_code, 1);
  EXPECT_THAT(none.output, HasSubstr("this coordinator needs a join token: give --join-token-file"));
  EXPECT_EQ(CountLines(none.output), 1) << none.output;
  std::vector<std::string> with_wrong = worker;
  with_wrong.insert(with_wrong.end(), {"--join-token-file", wrong});
  auto bad = testing::RunToExit(with_wrong, absl::Seconds(30));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("the join token is wrong"));
  // The coordinator names where each came from, and never a token.
  const std::string log = (*cluster)->Log("coordinator");
  EXPECT_THAT(log, HasSubstr("refused a worker session from ipv4:127.0.0.1:"));
  EXPECT_THAT(log, HasSubstr(": no join token"));
  EXPECT_THAT(log, HasSubstr(": wrong join token"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("token-0123456789abcdef")));
  absl::StatusOr<v1::ClusterStatus> status = (*cluster)->Status();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_TRUE(status->ready());
}

TEST(ControlTest, SplitPlanesServeWorkersAndClientsEachOnTheirOwnAddress) {
  auto cluster = testing::LocalCluster::StartSplitPlanes(OneWorker(kModel));
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  EXPECT_NE((*cluster)->control_address(), (*cluster)->address());
  EXPECT_THAT((*cluster)->Log("coordinator"),
              HasSubstr("worker control plane on 127.0.0.1:" +
                        (*cluster)->control_address().substr((*cluster)->control_address().rfind(':') + 1)));
  // The public address has no control plane: a worker dialling it is told, in one line.
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", (*cluster)->address(), "--name", "all",
                               "--connect-timeout", "20"},
                              absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("no worker control plane at " + (*cluster)->address() +
                                  ": give --coordinator the address of the coordinator's --control-listen"));
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  // And the control address has no API.
  auto control_api = v1::Inference::NewStub(
      grpc::CreateChannel((*cluster)->control_address(), grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  v1::ClusterStatus status;
  EXPECT_EQ(control_api->GetClusterStatus(&context, v1::GetClusterStatusRequest(), &status).error_code(),
            grpc::StatusCode::UNIMPLEMENTED);
  absl::StatusOr<v1::ClusterStatus> served = (*cluster)->Status();
  ASSERT_TRUE(served.ok()) << served.status();
  EXPECT_TRUE(served->ready());
}

TEST(ControlTest, WorkerWhoseCheckpointDiffersIsRefused) {
  // The same relative model path resolves to different directories for the coordinator and the
  // worker; the worker's copy has a different config.json.
  const fs::path root = fs::temp_directory_path() / ("mmx-ckpt-" + std::to_string(getpid()));
  fs::remove_all(root);
  for (const char* side : {"coord", "worker"}) {
    fs::create_directories(root / side / "model");
    for (const auto& f : fs::directory_iterator(kModel)) {
      if (f.is_regular_file()) fs::copy_file(f.path(), root / side / "model" / f.path().filename());
    }
  }
  {
    std::ifstream in(root / "worker" / "model" / "config.json");
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    text.replace(text.find("\"rope_theta\": 10000000"), 22, "\"rope_theta\": 5000000");
    fs::permissions(root / "worker" / "model" / "config.json", fs::perms::owner_write, fs::perm_options::add);
    std::ofstream(root / "worker" / "model" / "config.json") << text;
  }
  auto cluster = testing::LocalCluster::Start(
      testing::OneWorkerShard("model"),
      false, 1, (root / "coord").string(), /*start_workers=*/false);
  ASSERT_TRUE(cluster.ok());
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", (*cluster)->address(), "--name", "all"},
                              absl::Seconds(30), (root / "worker").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("checkpoint differs from the coordinator's"));
  fs::remove_all(root);
}

TEST(ControlTest, WorkerWhoseCheckpointDataDiffersIsRefusedNamingTheFile) {
  // Same config.json and headers, one weight byte flipped in the worker's copy of shard 2: the
  // fingerprint matches, the tensor digests do not.
  const fs::path root = fs::temp_directory_path() / ("mmx-data-" + std::to_string(getpid()));
  fs::remove_all(root);
  for (const char* side : {"coord", "worker"}) {
    fs::create_directories(root / side / "model");
    for (const auto& f : fs::directory_iterator(kModel)) {
      if (f.is_regular_file()) fs::copy_file(f.path(), root / side / "model" / f.path().filename());
    }
  }
  const fs::path shard2 = root / "worker" / "model" / "model-00002-of-00002.safetensors";
  fs::permissions(shard2, fs::perms::owner_write, fs::perm_options::add);
  {
    std::fstream f(shard2, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-2, std::ios::end);  // inside the last tensor's data, far from the header
    char byte = 0;
    f.read(&byte, 1);
    f.seekp(-2, std::ios::end);
    byte ^= 0x01;
    f.write(&byte, 1);
  }
  auto cluster = testing::LocalCluster::Start(testing::OneWorkerShard("model"), false, 1, (root / "coord").string());
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  EXPECT_THAT((*cluster)->Log("coordinator"), HasSubstr("tensor digests computed"));
  (*cluster)->KillWorker("all");
  ASSERT_TRUE((*cluster)->WaitWorkerState("all", v1::WORKER_STATE_LOST, absl::Seconds(30)).ok());
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", (*cluster)->address(), "--name", "all"},
                              absl::Seconds(60), (root / "worker").string());
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("checkpoint data: tensor '"));
  EXPECT_THAT(r.output, HasSubstr("' in its model-00002-of-00002.safetensors differs from the coordinator's "
                                  "checkpoint (same header, other data)"));
  // The coordinator goes on: the right worker takes the entry back.
  ASSERT_TRUE((*cluster)->StartWorker("all").ok());
  EXPECT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok()) << (*cluster)->Log("coordinator");
  cluster->reset();
  fs::remove_all(root);
}

TEST(ControlTest, UnreachableCoordinatorIsOneLineAndNonZeroExit) {
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", "127.0.0.1:1", "--name", "w", "--connect-timeout", "1"},
                              absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("cannot reach the coordinator at 127.0.0.1:1"));
  auto c = testing::RunToExit({kBin + "mmx", "status", "--server", "127.0.0.1:1"}, absl::Seconds(20));
  EXPECT_EQ(c.exit_code, 1);
  EXPECT_THAT(c.output, HasSubstr("error"));
  EXPECT_EQ(CountLines(c.output), 1) << c.output;
}

TEST(ControlTest, WorkerOnADeviceItCannotUseFailsBeforeRegistering) {
  // No GPU here (and maybe no CUDA in the build): one line naming the device, exit 1, before
  // any coordinator is contacted.
  if (fs::exists("/dev/nvidiactl")) GTEST_SKIP() << "an NVIDIA driver is present: cuda:0 may well work here";
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", "127.0.0.1:1", "--name", "w", "--device", "cuda:0"},
                              absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("--device cuda:0"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("cannot reach the coordinator")));
  EXPECT_EQ(CountLines(r.output), 1) << r.output;
  auto bad = testing::RunToExit({kBin + "mmx-worker", "--coordinator", "127.0.0.1:1", "--name", "w", "--device", "gpu0"},
                                absl::Seconds(20));
  EXPECT_EQ(bad.exit_code, 1);
  EXPECT_THAT(bad.output, HasSubstr("use cpu, cuda"));
}

TEST(ControlTest, CpuWorkerInAGpuEntryIsRefusedWithTheFix) {
  auto cluster = testing::LocalCluster::Start(
      absl::StrCat("model: ", kModel, "\nworkers:\n"
                   "  - {name: gpu, device: cuda:0, embedding: true, attention: [0, 8], lm_head: true, "
                   "experts: [{layers: [0, 8], ids: all}]}\n"),
      false, 1, "", /*start_workers=*/false);
  ASSERT_TRUE(cluster.ok()) << cluster.status();
  auto r = testing::RunToExit({kBin + "mmx-worker", "--coordinator", (*cluster)->address(), "--name", "gpu"},
                              absl::Seconds(30));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("is device cuda:0 in the shard config but registered with --device cpu; "
                                  "start it with --device cuda:0"));
}

TEST(ControlTest, InvalidShardConfigStopsTheCoordinatorBeforeServing) {
  const std::string path = ::testing::TempDir() + "/bad-shard.yaml";
  std::ofstream(path) << "model: " << kModel << "\nworkers:\n  - {name: a, embedding: true, attention: [0, 6], lm_head: true}\n";
  auto r = testing::RunToExit({kBin + "mmx-coord", "serve", "--shard-config", path, "--listen", "127.0.0.1:0"},
                              absl::Seconds(20));
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.output, HasSubstr("attention layers [6, 8) are on no worker"));
  EXPECT_THAT(r.output, HasSubstr("layer 0: experts [0, 1, 2, 3, 4, 5, 6, 7] are on no worker"));
}

TEST(ControlTest, BadGenerateRequestsGetInvalidArgument) {
  auto cluster = testing::LocalCluster::Start(OneWorker(kModel));
  ASSERT_TRUE(cluster.ok());
  ASSERT_TRUE((*cluster)->WaitReady(absl::Seconds(60)).ok());
  auto empty = testing::GenerateOnce((*cluster)->stub(), {}, 4);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(empty.status().message()), HasSubstr("prompt is empty"));
  auto big = testing::GenerateOnce((*cluster)->stub(), {1, 9999}, 4);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(big.status().message()), HasSubstr("outside the vocabulary"));
  auto zero = testing::GenerateOnce((*cluster)->stub(), {1}, 0);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace mmx
