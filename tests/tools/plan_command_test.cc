// `mmx-coord plan` as users call it: a real process, run from the repository root so that the
// checked-in examples (deploy/examples) are reproduced byte for byte, and every bad input gives
// one error line and a non-zero exit.
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "plan/shard_config.h"
#include "tests/testing/process.h"
#include "tests/plan/plan_test_util.h"
#include "tests/testing/status_matchers.h"

namespace mmx::plan {
namespace {

using ::mmx::testing::IsOk;
using ::testing::AllOf;
using ::testing::HasSubstr;
using testing::RealConfig;
using testing::RepoPath;

const std::string kCoord = std::string(MMX_BINARY_DIR) + "/bin/mmx-coord";
const std::string kModel = "deploy/examples/minimax-text-01";

struct Result {
  int exit_code = -1;
  std::string out;
  std::string err;
};

std::string Temp(const std::string& name) {
  return ::testing::TempDir() + "/plan_" + std::to_string(getpid()) + "_" + name;
}

using ::mmx::testing::ReadFile;

void WriteFile(const std::string& path, const std::string& text) { std::ofstream(path) << text; }

// Runs `mmx-coord plan ARGS` in the repository root.
Result Plan(const std::string& args) {
  const ::mmx::testing::ProcessResult p =
      ::mmx::testing::RunShell("cd " + RepoPath("") + " && " + kCoord + " plan " + args, absl::Seconds(120));
  Result r;
  r.exit_code = p.exit_code;
  r.out = p.out;
  r.err = p.err;
  return r;
}

int Lines(const std::string& s) { return static_cast<int>(std::count(s.begin(), s.end(), '\n')); }

// The checked-in reports and shard configs are what the binary prints now
// (deploy/examples/regenerate.sh rebuilds them).
TEST(PlanCommandTest, CheckedInExamplesAreUpToDate) {
  for (const std::string name : {"h100x16", "consumer24-int8", "mixed", "h100x8-too-small"}) {
    SCOPED_TRACE(name);
    const std::string shard = Temp(name + ".shard.yaml");
    std::remove(shard.c_str());
    const Result r = Plan("--model " + kModel + " --cluster deploy/examples/clusters/" + name + ".yaml --out " + shard);
    const std::string checked_in_shard = RepoPath("deploy/examples/plans/" + name + ".shard.yaml");
    // The report names the --out path; the checked-in one names the checked-in path.
    std::string report = r.out + r.err;
    if (const size_t at = report.find(shard); at != std::string::npos) {
      report.replace(at, shard.size(), "deploy/examples/plans/" + name + ".shard.yaml");
    }
    EXPECT_EQ(report, ReadFile(RepoPath("deploy/examples/plans/" + name + ".report.txt")))
        << "run deploy/examples/regenerate.sh";
    if (name == "h100x8-too-small") {
      EXPECT_EQ(r.exit_code, 1);
      EXPECT_FALSE(std::ifstream(shard).good());
      continue;
    }
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_EQ(ReadFile(shard), ReadFile(checked_in_shard)) << "run deploy/examples/regenerate.sh";
    auto parsed = ParseShardConfig(ReadFile(shard));
    ASSERT_THAT(parsed, IsOk());
    EXPECT_THAT(ValidateShardConfig(*parsed, RealConfig()), IsOk());
  }
}

TEST(PlanCommandTest, RealModelReportStatesParametersAndComponentBytes) {
  const Result r = Plan("--model " + kModel + " --cluster deploy/examples/clusters/h100x16.yaml");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("456,089,655,296 total"));
  EXPECT_THAT(r.out, HasSubstr("45,944,920,064 active per token"));
  // MODEL.md §7, bf16 column.
  for (const char* row : {"339.7 MB", "10.87 GB", "869.7 GB", "503.3 MB", "35.23 GB", "226.5 MB", "2.265 GB",
                          "31.46 MB", "2.458 GB", "912.2 GB"}) {
    EXPECT_THAT(r.out, HasSubstr(row));
  }
  EXPECT_THAT(r.out, HasSubstr("Fits: yes"));
  EXPECT_THAT(r.out, HasSubstr("tokens per dollar"));
}

TEST(PlanCommandTest, JsonReport) {
  const Result r = Plan("--model " + kModel + "/config.json --cluster deploy/examples/clusters/mixed.yaml --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["model_sizes"]["parameters"].get<int64_t>(), 456089655296);
  EXPECT_TRUE(j["fits"].get<bool>());
  EXPECT_EQ(j["workers"].size(), 22u);
  EXPECT_GT(j["decode"]["tokens_per_s"].get<double>(), 0);
  EXPECT_GT(j["time_to_first_token_s"]["32768"].get<double>(), j["time_to_first_token_s"]["1024"].get<double>());
  for (const auto& w : j["workers"]) {
    EXPECT_LE(w["memory"]["total_bytes"].get<int64_t>(), w["memory"]["usable_bytes"].get<int64_t>());
  }
}

TEST(PlanCommandTest, CannotFitExitsNonZeroWithTheShortfall) {
  const Result r = Plan("--model " + kModel + " --cluster deploy/examples/clusters/h100x8-too-small.yaml --json");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_EQ(Lines(r.err), 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("mmx-coord: error: the model does not fit this cluster: needs 421.1 GiB more "
                                     "memory"),
                           HasSubstr("smallest fix: 6 more 80 GiB workers")));
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_FALSE(j["fits"].get<bool>());
  EXPECT_GT(j["shortfall"]["short_bytes"].get<int64_t>(), 0);
}

TEST(PlanCommandTest, CheckReportsAHandWrittenShardConfig) {
  // Everything on two H100s of the 16: weights alone are 850 GiB, so both are over.
  const std::string over = Temp("over.yaml");
  WriteFile(over, "model: " + kModel +
                      "\nworkers:\n  - name: h100-0\n    embedding: true\n    attention: [0, 40]\n    experts:\n"
                      "      - {layers: [0, 80], ids: all}\n  - name: h100-1\n    attention: [40, 80]\n"
                      "    lm_head: true\n");
  Result r = Plan("--check " + over + " --cluster deploy/examples/clusters/h100x16.yaml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, AllOf(HasSubstr("worker 'h100-0' needs"), HasSubstr("over by"), HasSubstr("worker 'h100-1'")));
  EXPECT_THAT(r.out, HasSubstr("OVER"));

  // The planner's own config passes --check with the same figures.
  const std::string planned = Temp("planned.yaml");
  r = Plan("--model " + kModel + " --cluster deploy/examples/clusters/h100x16.yaml --out " + planned);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const Result check = Plan("--check " + planned + " --cluster deploy/examples/clusters/h100x16.yaml");
  EXPECT_EQ(check.exit_code, 0) << check.err;
  const std::string step = r.out.substr(r.out.find("Decode step"), 80);
  EXPECT_THAT(check.out, HasSubstr(step));

  // Names must be the spec's.
  const std::string stranger = Temp("stranger.yaml");
  WriteFile(stranger, ReadFile(planned) + "  - name: nobody\n    experts:\n      - {layers: [0, 1], ids: [0]}\n");
  r = Plan("--check " + stranger + " --cluster deploy/examples/clusters/h100x16.yaml");
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("shard config worker 'nobody' is not in the cluster spec"));
}

TEST(PlanCommandTest, BadInputGivesOneErrorLine) {
  const std::string no_config = Temp("empty-model");
  std::system(("mkdir -p " + no_config).c_str());
  const std::string bad_spec = Temp("bad-spec.yaml");
  WriteFile(bad_spec, "workers:\n  - name: a\n    device: tpu\n    memory_gib: 8\n    mem_bandwidth_gbs: 100\n"
                      "    tflops: 1\n    network_gbps: 10\n");
  const struct {
    std::string args;
    std::string message;
  } cases[] = {
      {"--model " + no_config + " --cluster deploy/examples/clusters/h100x16.yaml", "config.json: no such file"},
      {"--model " + kModel + " --cluster " + bad_spec, "bad-spec.yaml:3: workers[0] (a).device: 'tpu' is neither"},
      {"--model " + kModel + " --cluster /nonexistent.yaml", "cannot read cluster spec /nonexistent.yaml"},
      {"--cluster deploy/examples/clusters/h100x16.yaml", "plan needs --model"},
      {"--model " + kModel, "--cluster is required"},
  };
  for (const auto& c : cases) {
    const Result r = Plan(c.args);
    EXPECT_NE(r.exit_code, 0) << c.args;
    EXPECT_EQ(Lines(r.err), 1) << r.err;
    EXPECT_THAT(r.err, AllOf(HasSubstr("mmx-coord: error: "), HasSubstr(c.message)));
  }
}

// The runtime's own check (`mmx-coord check`, what `serve` runs before loading) accepts what the
// planner writes for a real (tiny) checkpoint.
TEST(PlanCommandTest, RuntimeCheckAcceptsThePlannedShardConfig) {
  const std::string spec = Temp("tiny-cluster.yaml");
  WriteFile(spec, "workers:\n  - name: cpu\n    count: 3\n    device: cpu\n    memory_gib: 8\n"
                  "    mem_bandwidth_gbs: 30\n    tflops: 0.45\n    network_gbps: 10\n");
  const std::string shard = Temp("tiny.shard.yaml");
  const Result r = Plan("--model tests/data/golden/tiny-a --cluster " + spec + " --out " + shard);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const ::mmx::testing::ProcessResult check = ::mmx::testing::RunShell(
      "cd " + RepoPath("") + " && " + kCoord + " check --shard-config " + shard, absl::Seconds(60));
  const std::string out = check.output;
  EXPECT_EQ(check.exit_code, 0) << out;
  EXPECT_THAT(out, HasSubstr("valid for tests/data/golden/tiny-a"));
}

TEST(PlanCommandTest, HelpShowsServingDefaults) {
  const Result r = Plan("--help");
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, AllOf(HasSubstr("expert_dtype bf16"), HasSubstr("max_context 131072"),
                           HasSubstr("max_sequences 32")));
}

}  // namespace
}  // namespace mmx::plan
