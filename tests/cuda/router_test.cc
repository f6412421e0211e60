// CUDA RouterTopK against kernels/cpu's reference (ids equal, weights within 1e-6: CUDA's expf
// is within 2 ulp of glibc's) and the CPU tests' hand-worked cases; ArgmaxRows against
// model::Argmax, exactly, NaNs and ties included. Device tests: Skipped without a GPU.
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels_cuda.h"
#include "model/sampling.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/testing/status_matchers.h"

namespace mmx::kernels::cuda {
namespace {

using ::mmx::kernels::testing::RandomVector;
using ::mmx::testing::IsOk;
using testing::DeviceArray;
using testing::ToDevice;
using testing::ToHost;

struct Routed {
  std::vector<int> ids;
  std::vector<float> weights;
};

Routed RunRouter(const std::vector<float>& logits, int64_t tokens, int experts, int k) {
  DeviceBuffer dl = ToDevice(logits);
  DeviceBuffer dids = DeviceArray<int>(static_cast<size_t>(tokens * k));
  DeviceBuffer dw = DeviceArray<float>(static_cast<size_t>(tokens * k));
  EXPECT_THAT(RouterTopK(dl.as<float>(), tokens, experts, k, dids.as<int>(), dw.as<float>(), nullptr), IsOk());
  return Routed{ToHost<int>(dids, static_cast<size_t>(tokens * k)), ToHost<float>(dw, static_cast<size_t>(tokens * k))};
}

TEST(CudaRouterTest, MatchesCpuReferenceOnRandomLogits) {
  MMX_SKIP_WITHOUT_GPU();
  // The model (32 experts, top-2) and odd ones.
  const struct {
    int64_t tokens;
    int experts, k;
  } cases[] = {{33, 32, 2}, {1, 32, 2}, {300, 32, 2}, {7, 5, 3}, {9, 1, 1}, {4, 64, 8}};
  uint32_t seed = 8;
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.tokens << " tokens, " << c.experts << " experts, k " << c.k);
    const std::vector<float> logits = RandomVector(static_cast<size_t>(c.tokens * c.experts), seed++, -4.f, 4.f);
    Routed ref{std::vector<int>(c.tokens * c.k), std::vector<float>(c.tokens * c.k)};
    reference::RouterTopK(logits.data(), c.tokens, c.experts, c.k, ref.ids.data(), ref.weights.data());
    const Routed got = RunRouter(logits, c.tokens, c.experts, c.k);
    EXPECT_EQ(got.ids, ref.ids);
    for (size_t i = 0; i < ref.weights.size(); ++i) EXPECT_NEAR(got.weights[i], ref.weights[i], 1e-6f) << i;
  }
}

TEST(CudaRouterTest, PicksLargestAndRenormalises) {
  MMX_SKIP_WITHOUT_GPU();
  // p proportional to [1, 3, 2, 1]: top-2 = {1, 2} with weights 3/5 and 2/5.
  const Routed got = RunRouter({0.f, std::log(3.f), std::log(2.f), 0.f}, 1, 4, 2);
  EXPECT_EQ(got.ids, (std::vector<int>{1, 2}));
  EXPECT_NEAR(got.weights[0], 0.6f, 1e-6f);
  EXPECT_NEAR(got.weights[1], 0.4f, 1e-6f);
}

TEST(CudaRouterTest, BreaksTiesTowardsLowerExpertId) {
  MMX_SKIP_WITHOUT_GPU();
  const Routed got = RunRouter({0.5f, 2.f, 0.5f, 2.f, 2.f, /*token 1*/ 1.f, 1.f, 1.f, 1.f, 1.f}, 2, 5, 2);
  EXPECT_EQ(got.ids, (std::vector<int>{1, 3, 0, 1}));
  for (float w : got.weights) EXPECT_NEAR(w, 0.5f, 1e-7f);
}

TEST(CudaRouterTest, IsStableForHugeLogits) {
  MMX_SKIP_WITHOUT_GPU();
  const Routed got = RunRouter({1000.f, 999.f, -1000.f}, 1, 3, 2);
  EXPECT_EQ(got.ids, (std::vector<int>{0, 1}));
  EXPECT_NEAR(got.weights[0], 1.f / (1.f + std::exp(-1.f)), 1e-6f);
  EXPECT_NEAR(got.weights[1], 1.f / (1.f + std::exp(1.f)), 1e-6f);
}

std::vector<int32_t> RunArgmax(const std::vector<float>& logits, int64_t rows, int64_t vocab) {
  DeviceBuffer dl = ToDevice(logits), dids = DeviceArray<int32_t>(static_cast<size_t>(rows));
  EXPECT_THAT(ArgmaxRows(dl.as<float>(), rows, vocab, dids.as<int32_t>(), nullptr), IsOk());
  return ToHost<int32_t>(dids, static_cast<size_t>(rows));
}

std::vector<int32_t> CpuArgmax(const std::vector<float>& logits, int64_t rows, int64_t vocab) {
  std::vector<int32_t> ids(rows);
  for (int64_t r = 0; r < rows; ++r) ids[r] = model::Argmax(logits.data() + r * vocab, vocab);
  return ids;
}

TEST(CudaArgmaxTest, MatchesSamplingArgmaxOnRandomRows) {
  MMX_SKIP_WITHOUT_GPU();
  // 200064: the model's vocabulary (MODEL.md §1).
  for (int64_t vocab : {1, 7, 513, 1000, 200064}) {
    for (int64_t rows : {1, 3, 8}) {
      SCOPED_TRACE(::testing::Message() << rows << " x " << vocab);
      const std::vector<float> logits = RandomVector(static_cast<size_t>(rows * vocab), static_cast<uint32_t>(vocab + rows), -20.f, 20.f);
      EXPECT_EQ(RunArgmax(logits, rows, vocab), CpuArgmax(logits, rows, vocab));
    }
  }
}

TEST(CudaArgmaxTest, TiesGoToTheLowerIndex) {
  MMX_SKIP_WITHOUT_GPU();
  const int64_t vocab = 5000;
  std::vector<float> logits(3 * vocab, 0.f);
  logits[0 * vocab + 4000] = logits[0 * vocab + 1234] = logits[0 * vocab + 4999] = 2.f;  // row 0: 1234
  // row 1: all equal -> 0
  logits[2 * vocab + 777] = logits[2 * vocab + 778] = std::numeric_limits<float>::infinity();  // row 2: 777
  EXPECT_EQ(RunArgmax(logits, 3, vocab), (std::vector<int32_t>{1234, 0, 777}));
  EXPECT_EQ(RunArgmax(logits, 3, vocab), CpuArgmax(logits, 3, vocab));
}

TEST(CudaArgmaxTest, TreatsNansLikeTheSequentialLoop) {
  MMX_SKIP_WITHOUT_GPU();
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  const int64_t vocab = 4;
  const std::vector<float> logits = {
      0.f,  nan,  5.f,  1.f,    // a NaN is skipped: 2
      nan,  9.f,  inf,  1.f,    // NaN at index 0: the loop never leaves 0
      -inf, nan,  -inf, nan,    // nothing beats index 0
      nan,  nan,  nan,  nan,    // 0
      1.f,  nan,  nan,  7.f,    // 3
  };
  EXPECT_EQ(RunArgmax(logits, 5, vocab), CpuArgmax(logits, 5, vocab));
  EXPECT_EQ(RunArgmax(logits, 5, vocab), (std::vector<int32_t>{2, 0, 0, 0, 3}));
}

}  // namespace
}  // namespace mmx::kernels::cuda
