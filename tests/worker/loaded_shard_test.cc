// LoadShard on the golden tiny-a checkpoint: what a worker holds for its shard entry, with its
// experts as stored (bf16) or quantized at load (`expert_dtype: int8`).
#include "worker/loaded_shard.h"

#include <cmath>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "model/layers.h"
#include "plan/shard_config.h"

namespace mmx::worker {
namespace {

const std::string kDir = testing::GoldenDir();

// An expert host of tiny-a: experts 1, 2 and 6 of layers [2, 5), nothing else.
plan::WorkerShard ExpertHost() {
  auto shard = plan::ParseShardConfig(R"(
model: unused
expert_dtype: int8
workers:
  - name: experts
    experts:
      - layers: [2, 5]
        ids: [1, 2, 6]
)");
  EXPECT_TRUE(shard.ok()) << shard.status();
  EXPECT_EQ(shard->expert_dtype, "int8");
  return shard->workers[0];
}

struct Progress {
  int64_t last_done = -1, total = -1;
  int calls = 0;
  bool monotonic = true;
  ProgressFn Fn() {
    return [this](int64_t done, int64_t t) {
      monotonic &= done >= last_done && (total < 0 || t == total);
      last_done = done;
      total = t;
      ++calls;
    };
  }
};

TEST(LoadShardTest, Int8ExpertDTypeQuantizesTheHeldExperts) {
  Progress progress;
  auto loaded = LoadShard(kDir, ExpertHost(), model::ExpertDType::kInt8, progress.Fn());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const LoadedShard& s = **loaded;
  const model::ModelConfig& c = s.config();
  EXPECT_EQ(s.expert_dtype, model::ExpertDType::kInt8);
  EXPECT_EQ(s.int8_experts.size(), 3u * 3 * 3);  // 3 layers x 3 experts x (w1, w3, w2)
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    for (int e = 0; e < c.num_local_experts; ++e) {
      const bool held = l >= 2 && l < 5 && (e == 1 || e == 2 || e == 6);
      ASSERT_EQ(s.HoldsExpert(l, e), held) << l << " " << e;
      if (!held) continue;
      const model::ExpertWeights& ew = s.experts[l].experts[e];
      for (const kernels::WeightView* w : {&ew.w1, &ew.w3, &ew.w2}) {
        EXPECT_EQ(w->dtype, DType::kI8);
        EXPECT_NE(w->scales, nullptr);
      }
      EXPECT_EQ(ew.w1.rows, c.intermediate_size);
      EXPECT_EQ(ew.w2.rows, c.hidden_size);
    }
  }
  // Progress counts the checkpoint bytes read (the bf16 sources) and ends at its total.
  const int64_t source = int64_t{9} * 3 * c.hidden_size * c.intermediate_size * 2;
  EXPECT_TRUE(progress.monotonic);
  EXPECT_EQ(progress.total, source);
  EXPECT_EQ(progress.last_done, source);
  EXPECT_EQ(progress.calls, 1 + 27);
  // What the worker holds: int8 bytes and scales, about half.
  EXPECT_EQ(s.weight_bytes, source / 2 + int64_t{9} * 4 * (2 * c.intermediate_size + c.hidden_size));
}

TEST(LoadShardTest, Bf16ExpertDTypeKeepsTheMappedViews) {
  Progress progress;
  auto loaded = LoadShard(kDir, ExpertHost(), model::ExpertDType::kBf16, progress.Fn());
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_TRUE((*loaded)->int8_experts.empty());
  EXPECT_EQ((*loaded)->experts[3].experts[6].w2.dtype, DType::kBF16);
  EXPECT_EQ((*loaded)->weight_bytes, progress.total);
}

TEST(LoadShardTest, Int8ExpertsServeDispatchedPairsCloseToBf16) {
  // What an expert host computes for dispatched (token, expert) pairs: RunExpertPairs on layer 3.
  auto bf16 = LoadShard(kDir, ExpertHost(), model::ExpertDType::kBf16, nullptr);
  auto int8 = LoadShard(kDir, ExpertHost(), model::ExpertDType::kInt8, nullptr);
  ASSERT_TRUE(bf16.ok() && int8.ok());
  const model::ModelConfig& c = (*bf16)->config();
  const int64_t H = c.hidden_size, n = 7;
  std::vector<float> rows(static_cast<size_t>(n * H));
  for (size_t i = 0; i < rows.size(); ++i) rows[i] = std::sin(0.1f * static_cast<float>(i));
  const std::vector<int> ids = {1, 6, 2, 1, 6, 6, 2};
  const std::vector<float> weights(n, 0.5f);
  std::vector<float> a(rows.size()), b(rows.size());
  const int64_t bytes_bf16 = *model::RunExpertPairs(c, (*bf16)->experts[3], rows.data(), ids.data(), weights.data(), n, a.data());
  const int64_t bytes_int8 = *model::RunExpertPairs(c, (*int8)->experts[3], rows.data(), ids.data(), weights.data(), n, b.data());
  // Three experts read once each: half the bytes, plus their scales.
  EXPECT_EQ(bytes_int8, bytes_bf16 / 2 + int64_t{3} * 4 * (2 * c.intermediate_size + H));
  double err = 0, norm = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err += (a[i] - b[i]) * (a[i] - b[i]);
    norm += a[i] * a[i];
  }
  // Relative RMS error of a SwiGLU of three int8 matrices, each ~0.65% (int8_experts_test.cc).
  EXPECT_LT(std::sqrt(err / norm), 0.03);
  EXPECT_GT(err, 0.0);
}

}  // namespace
}  // namespace mmx::worker

namespace mmx::worker {
namespace {

TEST(PlaceShardTest, CpuKeepsTheHostComputeAndItsViews) {
  auto loaded = LoadShard(kDir, ExpertHost(), model::ExpertDType::kBf16, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const model::StageCompute* before = (*loaded)->compute.get();
  ASSERT_NE(before, nullptr);
  EXPECT_EQ(before->device_name(), "cpu");
  ASSERT_TRUE(PlaceShard(**loaded, *model::ParseDeviceSpec("cpu"), kernels::ActivationPrecision::kFp32, nullptr).ok());
  EXPECT_EQ((*loaded)->compute.get(), before);
  const model::WeightsView view = (*loaded)->weights_view();
  EXPECT_EQ(view.embedding, nullptr);  // an expert host holds no embedding, attention or tail
  EXPECT_EQ(view.attention, nullptr);
  EXPECT_EQ(view.tail, nullptr);
  EXPECT_EQ(view.experts, &(*loaded)->experts);
}

TEST(PlaceShardTest, WithoutPageInTheViewsAndBytesAreTheSame) {
  // What a GPU worker loads (page_in = false): the same tensors, nothing read yet.
  auto paged = LoadShard(kDir, ExpertHost(), model::ExpertDType::kBf16, nullptr);
  int64_t last_done = -1, last_total = -2;
  auto mapped = LoadShard(kDir, ExpertHost(), model::ExpertDType::kBf16,
                          [&](int64_t done, int64_t total) {
                            last_done = done;
                            last_total = total;
                          },
                          /*page_in=*/false);
  ASSERT_TRUE(paged.ok() && mapped.ok());
  EXPECT_EQ((*mapped)->weight_bytes, (*paged)->weight_bytes);
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ((*mapped)->experts[3].experts[2].w1.rows, (*paged)->experts[3].experts[2].w1.rows);
  EXPECT_FALSE((*mapped)->experts[3].experts[0].loaded());
}

TEST(PlaceShardTest, Int8ExpertsGoToAGpuLikeBf16Ones) {
  // A GPU multiplies int8 experts (kernels_cuda.h Gemm); on a machine without that GPU, or a
  // build without CUDA, placing them fails for that reason alone, as bf16 experts do.
  auto loaded = LoadShard(kDir, ExpertHost(), model::ExpertDType::kInt8, nullptr);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  const absl::Status st =
      PlaceShard(**loaded, *model::ParseDeviceSpec("cuda:7"), kernels::ActivationPrecision::kFp32, nullptr);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_EQ(st.message().find("int8"), std::string::npos) << st;
  EXPECT_EQ((*loaded)->compute->device_name(), "cpu");  // left as it was
}

}  // namespace
}  // namespace mmx::worker
