// The CUDA backend held to the golden set the way every backend is: a worker on cuda:0 running
// the whole model through the engine (the same checks as tests/engine/golden_test.cc, at the same
// 5e-4 in its fp32-activation mode), layer by layer (hidden states, router logits, final norm),
// many sequences growing the state pool, and its bf16 mode compared with its fp32 mode as the
// golden README advises (mean and max logit difference, greedy agreement: the figures are
// printed for docs/benchmarks.md). Skipped without a GPU.
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "engine/local_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/sampling.h"
#include "model/stage_compute.h"
#include "parallel/stage_compute_factory.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/testing/golden_checks.h"
#include "tests/testing/layer_trace.h"
#include "tests/testing/whole_model.h"

namespace mmx::engine {
namespace {

constexpr float kTolerance = 5e-4f;

std::unique_ptr<LocalEngine> StartOnGpu(bool bf16_activations, DType kv_dtype = DType::kF32,
                                       const std::string& device = "cuda:0", const std::string& experts = "bf16") {
  LocalEngineOptions o;
  o.model_dir = testing::GoldenDir();
  o.device = device;
  o.expert_dtype = experts;
  o.bf16_activations = bf16_activations;
  o.kv_dtype = kv_dtype;  // fp32 unless asked: golden-exact
  o.start_scheduler = false;
  auto engine = LocalEngine::Start(std::move(o));
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? *std::move(engine) : nullptr;
}

class CudaEngineGoldenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    MMX_SKIP_WITHOUT_GPU();
    engine_ = StartOnGpu(false);
    ASSERT_NE(engine_, nullptr);
    stepper_ = std::make_unique<testing::EngineStepper>(*engine_);
  }
  std::unique_ptr<LocalEngine> engine_;
  std::unique_ptr<testing::EngineStepper> stepper_;
};

TEST_F(CudaEngineGoldenTest, Fp32PrefillLogitsMatchAtEveryPosition) {
  testing::CheckPrefillAtEveryPosition(*stepper_, kTolerance);
}
TEST_F(CudaEngineGoldenTest, Fp32ChunkedPrefillMatches) { testing::CheckChunkedPrefill(*stepper_, kTolerance); }
TEST_F(CudaEngineGoldenTest, Fp32TeacherForcedDecodeMatches) { testing::CheckDecode(*stepper_, kTolerance, true); }
TEST_F(CudaEngineGoldenTest, Fp32GreedyDecodeMatches) { testing::CheckDecode(*stepper_, kTolerance, false); }
TEST_F(CudaEngineGoldenTest, Fp32BatchedRowsMatch) { testing::CheckBatchedRows(*stepper_, kTolerance); }
TEST_F(CudaEngineGoldenTest, Fp32MixedLengthBatchMatches) { testing::CheckMixedLengthBatch(*stepper_, kTolerance); }

TEST_F(CudaEngineGoldenTest, ManySequencesGrowTheStatePoolWithoutDisturbingEachOther) {
  // 20 sequences (past the pool's first 8 slots and KV capacity of 256 for p300), then each
  // decodes one token in one step; every one must equal the golden p5 / p300 decode logits.
  auto decode = testing::ReadGoldenFile("decode.safetensors");
  const int64_t V = engine_->config().vocab_size;
  std::vector<testing::EngineStepper::Input> steps;
  for (uint64_t id = 0; id < 20; ++id) {
    const std::string name = id % 2 ? "p300" : "p5";
    ASSERT_TRUE(stepper_->Step({{id, testing::GoldenPrompt(name), false}}).ok());
    steps.push_back({id, {static_cast<int32_t>(decode.at(name + ".generated_ids").i64[0])}, false});
  }
  auto out = stepper_->Step(steps);
  ASSERT_TRUE(out.ok()) << out.status();
  for (uint64_t id = 0; id < 20; ++id) {
    const std::string name = id % 2 ? "p300" : "p5";
    EXPECT_LE(testing::MaxAbsDiff((*out)[id].data(), decode.at(name + ".decode_logits").f32.data(), V), kTolerance)
        << "sequence " << id;
  }
}

TEST(CudaLayerTraceTest, Fp32MatchesHiddenStatesRouterLogitsAndFinalNorm) {
  MMX_SKIP_WITHOUT_GPU();
  auto shard = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(shard.ok()) << shard.status();
  int64_t last_done = -1, total_seen = -1;
  auto compute = parallel::MakeStageCompute(*model::ParseDeviceSpec("cuda:0"), (*shard)->weights_view(),
                                         kernels::ActivationPrecision::kFp32, [&](int64_t done, int64_t total) {
                                           EXPECT_GE(done, last_done);
                                           last_done = done;
                                           total_seen = total;
                                         });
  ASSERT_TRUE(compute.ok()) << compute.status();
  EXPECT_EQ(last_done, total_seen);  // upload progress reached its total
  EXPECT_EQ((*compute)->device_weight_bytes(), total_seen);
  testing::CheckLayerTrace(**compute, (*shard)->config(), kTolerance);
}

// Two engines' prefill logits on the golden prompts p64, p300 and p700: the mean and largest
// absolute difference, and in how many rows the argmax (the greedy choice) agrees.
struct PrefillComparison {
  double mean = 0, worst = 0;
  int64_t rows = 0, agree = 0;
};
PrefillComparison ComparePrefills(LocalEngine& reference, LocalEngine& other) {
  PrefillComparison c;
  testing::EngineStepper a(reference), b(other);
  const int64_t V = reference.config().vocab_size;
  double sum = 0;
  int64_t count = 0;
  for (const std::string name : {"p64", "p300", "p700"}) {
    auto x = a.Step({{1, testing::GoldenPrompt(name), true}});
    auto y = b.Step({{1, testing::GoldenPrompt(name), true}});
    EXPECT_TRUE(x.ok()) << x.status();
    EXPECT_TRUE(y.ok()) << y.status();
    if (!x.ok() || !y.ok()) return c;
    const std::vector<float>& lx = (*x)[0];
    const std::vector<float>& ly = (*y)[0];
    for (size_t i = 0; i < lx.size(); ++i) {
      const double d = std::fabs(static_cast<double>(lx[i]) - ly[i]);
      sum += d;
      c.worst = std::max(c.worst, d);
      ++count;
    }
    for (size_t r = 0; r < lx.size() / V; ++r, ++c.rows) {
      c.agree += model::Argmax(lx.data() + r * V, V) == model::Argmax(ly.data() + r * V, V);
    }
    a.End(1);
    b.End(1);
  }
  c.mean = sum / static_cast<double>(count);
  return c;
}

// bf16 activations (cuBLAS on tensor cores for more than 8 tokens) against the fp32 mode on the
// golden prompts' prefill. Element-wise equality is meaningless here (a router or argmax flip
// moves whole rows), so this reports the figures and checks only that the mode is sane.
TEST(CudaBf16Test, Bf16ModeAgainstFp32Mode) {
  MMX_SKIP_WITHOUT_GPU();
  std::unique_ptr<LocalEngine> fp32 = StartOnGpu(false), bf16 = StartOnGpu(true);
  ASSERT_NE(fp32, nullptr);
  ASSERT_NE(bf16, nullptr);
  const PrefillComparison c = ComparePrefills(*fp32, *bf16);
  std::printf("bf16 vs fp32 activations (golden tiny-a prefill, p64+p300+p700): mean |dlogit| %.5f, max %.4f, "
              "greedy agreement %lld/%lld (%.1f%%)\n",
              c.mean, c.worst, static_cast<long long>(c.agree), static_cast<long long>(c.rows),
              100.0 * c.agree / c.rows);
  EXPECT_GT(c.worst, 0.0);  // the mode does round
  // Not yet measured on a GPU: the golden README's simulated all-bf16 run has a mean difference
  // of 0.0735 against fp32; the CPU's bf16 mode measures 0.020 (tests/engine/precision_test.cc).
  EXPECT_LT(c.mean, 0.11);
  EXPECT_GE(c.agree, c.rows * 9 / 10);
}

// The KV cache in bf16 pages on the GPU against fp32 pages, on the golden prompts' prefill: the
// same statistics tests/engine/precision_test.cc holds the CPU to (measured there: mean 0.0038,
// argmax agreement 1064/1064).
TEST(CudaBf16Test, Bf16KvCacheAgainstFp32KvCache) {
  MMX_SKIP_WITHOUT_GPU();
  std::unique_ptr<LocalEngine> fp32 = StartOnGpu(false), bf16 = StartOnGpu(false, DType::kBF16);
  ASSERT_NE(fp32, nullptr);
  ASSERT_NE(bf16, nullptr);
  const PrefillComparison c = ComparePrefills(*fp32, *bf16);
  std::printf("bf16 vs fp32 KV cache on the GPU (golden tiny-a prefill, p64+p300+p700): mean |dlogit| %.5f, max %.4f, "
              "greedy agreement %lld/%lld\n",
              c.mean, c.worst, static_cast<long long>(c.agree), static_cast<long long>(c.rows));
  EXPECT_GT(c.worst, 0.0);  // the cache really is rounded
  EXPECT_LT(c.mean, 0.008);
  EXPECT_GE(c.agree, c.rows - 10);
}

// int8 experts (quantized at load, as on a CPU) multiplied on the GPU by its int8 GEMV, against
// the CPU engine with the same int8 experts: every prefill row of p300 and 16 greedy tokens.
TEST(CudaInt8Test, Int8ExpertsOnTheGpuMatchTheCpuInt8Engine) {
  MMX_SKIP_WITHOUT_GPU();
  std::unique_ptr<LocalEngine> gpu = StartOnGpu(false, DType::kF32, "cuda:0", "int8");
  std::unique_ptr<LocalEngine> cpu = StartOnGpu(false, DType::kF32, "cpu", "int8");
  ASSERT_NE(gpu, nullptr);
  ASSERT_NE(cpu, nullptr);
  testing::EngineStepper a(*gpu), b(*cpu);
  auto x = a.Step({{1, testing::GoldenPrompt("p300"), true}});
  auto y = b.Step({{1, testing::GoldenPrompt("p300"), true}});
  ASSERT_TRUE(x.ok()) << x.status();
  ASSERT_TRUE(y.ok()) << y.status();
  const float worst = testing::MaxAbsDiff((*x)[0].data(), (*y)[0].data(), (*y)[0].size());
  std::printf("int8 experts, GPU vs CPU (golden tiny-a p300 prefill): max |dlogit| %.2e\n", worst);
  EXPECT_LE(worst, 2 * kTolerance);  // the same quantized weights; only the sum order differs
}

}  // namespace
}  // namespace mmx::engine
