#include "plan/cluster_spec.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::plan {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kIssueExample[] = R"(workers:
  - name: h100              # with count > 1 the workers are named h100-0, h100-1, ...
    count: 8
    device: cuda            # cuda | cpu
    memory_gib: 80          # usable device memory (HBM, or RAM for cpu)
    mem_bandwidth_gbs: 3350 # GB/s
    tflops: 989             # dense bf16 TFLOP/s
    network_gbps: 400       # NIC, Gbit/s
    network_latency_us: 5   # optional
    price_per_hour: 2.50    # optional: reports tokens per dollar
  - name: big-cpu
    device: cpu
    memory_gib: 768
    mem_bandwidth_gbs: 460
    tflops: 12
    network_gbps: 100
serving:                    # optional, defaults shown in --help
  expert_dtype: int8        # bf16 | int8 (weight-only, per-output-channel scales)
  max_context: 65536
  max_sequences: 16
)";

// One worker entry with `extra` lines appended (or a key replaced by putting it in `extra`).
std::string Spec(const std::string& worker_lines, const std::string& tail = "") {
  return "workers:\n  - name: w\n" + worker_lines + tail;
}
const std::string kValidWorker =
    "    device: cuda\n    memory_gib: 24\n    mem_bandwidth_gbs: 1000\n    tflops: 100\n    network_gbps: 25\n";

TEST(ClusterSpecTest, ParsesTheIssueSchemaAndExpandsCounts) {
  auto spec = ParseClusterSpec(kIssueExample, "c.yaml");
  ASSERT_THAT(spec, IsOk());
  ASSERT_EQ(spec->workers.size(), 9u);
  EXPECT_EQ(spec->workers[0].name, "h100-0");
  EXPECT_EQ(spec->workers[7].name, "h100-7");
  EXPECT_EQ(spec->workers[7].group, "h100");
  EXPECT_EQ(spec->workers[8].name, "big-cpu");  // count 1 keeps the name as written
  EXPECT_EQ(spec->workers[0].device, DeviceKind::kCuda);
  EXPECT_EQ(spec->workers[8].device, DeviceKind::kCpu);
  EXPECT_DOUBLE_EQ(spec->workers[3].memory_gib, 80);
  EXPECT_DOUBLE_EQ(spec->workers[3].mem_bandwidth_gbs, 3350);
  EXPECT_DOUBLE_EQ(spec->workers[3].tflops, 989);
  EXPECT_DOUBLE_EQ(spec->workers[3].network_gbps, 400);
  EXPECT_DOUBLE_EQ(spec->workers[3].network_latency_us, 5);
  EXPECT_EQ(spec->workers[3].price_per_hour, 2.5);
  EXPECT_DOUBLE_EQ(spec->workers[8].network_latency_us, kDefaultNetworkLatencyUs);
  EXPECT_FALSE(spec->workers[8].price_per_hour.has_value());
  EXPECT_EQ(spec->serving.expert_dtype, "int8");
  EXPECT_EQ(spec->serving.max_context, 65536);
  EXPECT_EQ(spec->serving.max_sequences, 16);
  EXPECT_EQ(spec->Find("h100-5"), 5);
  EXPECT_EQ(spec->Find("h100"), -1);
  EXPECT_EQ(ShardDevice(spec->workers[0]), "cuda:0");
  EXPECT_EQ(ShardDevice(spec->workers[8]), "cpu");
}

TEST(ClusterSpecTest, ServingDefaults) {
  auto spec = ParseClusterSpec(Spec(kValidWorker));
  ASSERT_THAT(spec, IsOk());
  EXPECT_EQ(spec->serving.expert_dtype, "bf16");
  EXPECT_EQ(spec->serving.kv_dtype, DType::kBF16);
  EXPECT_EQ(spec->serving.max_context, 131072);
  EXPECT_EQ(spec->serving.max_sequences, 32);
  auto fp32 = ParseClusterSpec(Spec(kValidWorker, "serving:\n  kv_dtype: fp32\n"));
  ASSERT_THAT(fp32, IsOk());
  EXPECT_EQ(fp32->serving.kv_dtype, DType::kF32);
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "serving:\n  kv_dtype: int8\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("serving.kv_dtype 'int8' is neither bf16")));
  EXPECT_EQ(spec->serving.wire_dtype, DType::kF32);  // golden-exact unless asked
  auto bf16_wire = ParseClusterSpec(Spec(kValidWorker, "serving:\n  wire_dtype: bf16\n"));
  ASSERT_THAT(bf16_wire, IsOk());
  EXPECT_EQ(bf16_wire->serving.wire_dtype, DType::kBF16);
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "serving:\n  wire_dtype: fp8\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("serving.wire_dtype 'fp8' is neither fp32")));
}

TEST(ClusterSpecTest, UnknownKeysNameFileLineAndKey) {
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker + "    memory_gb: 24\n"), "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("c.yaml:8:"), HasSubstr("memory_gb: unknown key"))));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "serving:\n  max_ctx: 4096\n"), "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("c.yaml:9:"), HasSubstr("serving.max_ctx: unknown key"))));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "extra: 1\n"), "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("c.yaml:8:"), HasSubstr("extra: unknown key"))));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "? [a]\n: 1\n"), "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("keys must be plain names")));
}

TEST(ClusterSpecTest, RejectsZeroAndNegativeSizes) {
  for (const char* key : {"memory_gib", "mem_bandwidth_gbs", "tflops", "network_gbps"}) {
    for (const char* value : {"0", "-8"}) {
      std::string lines = kValidWorker;
      const size_t at = lines.find(std::string(key) + ":");
      const size_t eol = lines.find('\n', at);
      lines.replace(at, eol - at, std::string(key) + ": " + value);
      EXPECT_THAT(ParseClusterSpec(Spec(lines), "c.yaml"),
                  StatusIs(absl::StatusCode::kInvalidArgument,
                           AllOf(HasSubstr("c.yaml:"), HasSubstr(key), HasSubstr("must be greater than 0"))))
          << key << " = " << value;
    }
  }
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker + "    network_latency_us: -1\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("network_latency_us: must not be negative")));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker + "    price_per_hour: -2\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("price_per_hour: must not be negative")));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "serving:\n  max_context: 0\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("serving.max_context: must be at least 1")));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "serving:\n  max_sequences: -4\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("serving.max_sequences: must be at least 1")));
  // Zero latency and a free machine are fine.
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker + "    network_latency_us: 0\n    price_per_hour: 0\n")), IsOk());
}

TEST(ClusterSpecTest, RejectsACountOfZero) {
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker + "    count: 0\n"), "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("c.yaml:8:"), HasSubstr("count: must be at least 1, got 0"))));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker + "    count: 2.5\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("count: expected a whole number")));
}

TEST(ClusterSpecTest, RejectsADeviceThatIsNeitherCpuNorCuda) {
  std::string lines = kValidWorker;
  lines.replace(lines.find("cuda"), 4, "gpu");
  EXPECT_THAT(ParseClusterSpec(Spec(lines), "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("c.yaml:3:"), HasSubstr("device: 'gpu' is neither cpu nor cuda"))));
}

TEST(ClusterSpecTest, RejectsDuplicateNamesIncludingExpandedOnes) {
  const std::string twice = "workers:\n  - name: a\n" + kValidWorker + "  - name: a\n" + kValidWorker;
  EXPECT_THAT(ParseClusterSpec(twice, "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("c.yaml:8:"), HasSubstr("worker name 'a' is already used (line 2)"))));
  // gpu with count 2 makes gpu-0 and gpu-1, which collides with a worker written as gpu-1.
  const std::string expanded =
      "workers:\n  - name: gpu\n    count: 2\n" + kValidWorker + "  - name: gpu-1\n" + kValidWorker;
  EXPECT_THAT(ParseClusterSpec(expanded),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("worker name 'gpu-1' is already used")));
}

TEST(ClusterSpecTest, RejectsMissingKeysWrongTypesAndBadDtype) {
  EXPECT_THAT(ParseClusterSpec("workers:\n  - name: w\n    device: cpu\n", "c.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("c.yaml:2:"), HasSubstr("memory_gib: missing"))));
  std::string lines = kValidWorker;
  lines.replace(lines.find("24"), 2, "lots");
  EXPECT_THAT(ParseClusterSpec(Spec(lines)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("memory_gib: expected a number")));
  EXPECT_THAT(ParseClusterSpec(Spec(kValidWorker, "serving:\n  expert_dtype: fp8\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("expert_dtype: 'fp8' is neither bf16 nor int8")));
  EXPECT_THAT(ParseClusterSpec("workers: []\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'workers' must be a non-empty list")));
  EXPECT_THAT(ParseClusterSpec("workers:\n  - name: [a, b]\n" + kValidWorker),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("name: expected a non-empty name")));
  EXPECT_THAT(ParseClusterSpec("workers:\n  - name: a b\n" + kValidWorker),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("may use only letters")));
}

TEST(ClusterSpecTest, SyntaxErrorsAndMissingFiles) {
  EXPECT_THAT(ParseClusterSpec("workers: [\n  - name: a\n", "bad.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, AllOf(HasSubstr("bad.yaml:"), HasSubstr("YAML syntax error"))));
  EXPECT_THAT(ParseClusterSpec("- just\n- a list\n", "list.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("list.yaml: expected a mapping")));
  EXPECT_THAT(LoadClusterSpec("/nonexistent/cluster.yaml"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("/nonexistent/cluster.yaml")));
}

}  // namespace
}  // namespace mmx::plan
