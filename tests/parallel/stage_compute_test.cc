// The CPU StageCompute's refusals and MakeStageCompute's errors for devices this machine or
// build cannot serve. (Its numbers are held to the golden set through the engine:
// tests/engine/golden_test.cc and layer_trace_test.cc.)
#include "model/stage_compute.h"
#include "parallel/stage_compute_factory.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/whole_model.h"

namespace mmx::model {
namespace {

using ::testing::HasSubstr;

TEST(CpuStageComputeTest, NamesItsDeviceAndHoldsNothingOnOne) {
  auto weights = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  EXPECT_EQ((*weights)->compute->device_name(), "cpu");
  EXPECT_EQ((*weights)->compute->device_weight_bytes(), 0);
}

TEST(StageComputeRefusals, PiecesNotHeldAreFailedPreconditions) {
  auto weights = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  WeightsView view = (*weights)->weights_view();
  // Holds layers 2..3 only, no embedding, no tail, no experts.
  std::vector<AttentionBlockWeights> two((*weights)->attention_blocks.begin() + 2, (*weights)->attention_blocks.begin() + 4);
  view.attention = &two;
  view.first_layer = 2;
  view.embedding = nullptr;
  view.tail = nullptr;
  view.experts = nullptr;
  std::unique_ptr<StageCompute> compute = MakeCpuStageCompute(view);
  const ModelConfig& c = (*weights)->config();
  std::vector<float> x(c.hidden_size), residual, logits(c.vocab_size);
  int32_t id = 1;
  EXPECT_THAT(compute->Embed(&id, 1, x.data()).message(), HasSubstr("no embedding"));
  auto state = compute->NewSequence(2, 4, DType::kBF16);
  ASSERT_TRUE(state.ok());
  BatchLayout batch;
  batch.Add(1, 0, state->get());
  Routing routing;
  EXPECT_EQ(compute->AttentionBlock(1, batch, x.data(), &residual, &routing).code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(compute->AttentionBlock(4, batch, x.data(), &residual, &routing).code(),
            absl::StatusCode::kFailedPrecondition);
  int expert = 0;
  float weight = 1;
  EXPECT_EQ(compute->ExpertPairs(2, x.data(), &expert, &weight, 1, x.data()).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(compute->Logits(x.data(), {0}, logits.data()).message(), HasSubstr("no lm_head"));
}

TEST(MakeStageComputeTest, SeveralGpusWithoutThemAreAFailedPrecondition) {
  auto weights = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  auto spec = ParseDeviceSpec("cuda:0,1");
  ASSERT_TRUE(spec.ok());
  auto compute = parallel::MakeStageCompute(*spec, (*weights)->weights_view(), kernels::ActivationPrecision::kFp32, nullptr);
  if (compute.ok()) GTEST_SKIP() << "this machine has two GPUs: " << (*compute)->device_name();
  EXPECT_EQ(compute.status().code(), absl::StatusCode::kFailedPrecondition) << compute.status();
  EXPECT_THAT(compute.status().message(), HasSubstr("--device cuda:"));
  EXPECT_EQ(parallel::QueryCudaDevice(*spec).status().code(), absl::StatusCode::kFailedPrecondition);
}

// On a machine without a GPU (CI), cuda:0 is refused with a status, whether or not the build
// has the CUDA backend; on a GPU machine this test has nothing to check.
TEST(MakeStageComputeTest, CudaWithoutAGpuIsAFailedPrecondition) {
  auto weights = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  auto compute = parallel::MakeStageCompute(*ParseDeviceSpec("cuda:0"), (*weights)->weights_view(), kernels::ActivationPrecision::kFp32,
                                  nullptr);
#ifdef MMX_TEST_HAVE_CUDA_BUILD
  if (compute.ok()) GTEST_SKIP() << "this machine has a GPU: " << (*compute)->device_name();
  EXPECT_EQ(compute.status().code(), absl::StatusCode::kFailedPrecondition) << compute.status();
  EXPECT_THAT(compute.status().message(), HasSubstr("--device cpu"));
#else
  ASSERT_FALSE(compute.ok());
  EXPECT_EQ(compute.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(compute.status().message(), HasSubstr("no CUDA backend"));
#endif
}

TEST(DeviceSpecTest, ParsesTheAcceptedForms) {
  EXPECT_EQ(ParseDeviceSpec("cpu")->ToString(), "cpu");
  EXPECT_FALSE(ParseDeviceSpec("cpu")->is_cuda());
  EXPECT_EQ(ParseDeviceSpec("cuda")->ToString(), "cuda:0");
  EXPECT_EQ(ParseDeviceSpec("cuda:3")->ordinals, std::vector<int>({3}));
  EXPECT_EQ(ParseDeviceSpec("cuda:1,0,2")->ordinals, std::vector<int>({1, 0, 2}));
  EXPECT_EQ(ParseDeviceSpec("cuda:1,0,2")->ToString(), "cuda:1,0,2");
}

TEST(DeviceSpecTest, RefusesEverythingElseNamingTheForms) {
  for (const char* bad : {"", "gpu", "cuda:", "cuda:-1", "cuda:0,0", "cuda:x", "cuda:0,", "CPU"}) {
    auto spec = ParseDeviceSpec(bad);
    ASSERT_FALSE(spec.ok()) << bad;
    EXPECT_EQ(spec.status().code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(spec.status().message(), HasSubstr("use cpu, cuda")) << bad;
  }
}

}  // namespace
}  // namespace mmx::model
