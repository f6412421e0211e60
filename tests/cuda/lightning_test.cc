// CUDA LightningDecode against kernels/cpu's reference recurrence (one token per sequence,
// each sequence's state in its own pool slot), over several steps.
// Tolerances: the state 1e-6 of |lambda * S| + |k_a v_b| per element (one fused multiply-add
// from the same inputs; only lambda = expf(-s) may differ by an ulp); the output 1e-5 of
// sum_a |q_a S_ab| per element, as the CPU tests (fp32 sums in another order).
// Device tests: Skipped without a GPU.
#include <cmath>
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels_cuda.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/kernels/kernel_test_util.h"
#include "tests/testing/status_matchers.h"

namespace mmx::kernels::cuda {
namespace {

using ::mmx::kernels::testing::ExpectClose;
using ::mmx::kernels::testing::RandomVector;
using ::mmx::testing::IsOk;
using testing::DeviceArray;
using testing::ToDevice;
using testing::ToHost;

// Slopes from MODEL.md §3.3's table (layer 0 head 0 to layer 78 head 63) and a faster one.
std::vector<float> Slopes(int heads) {
  const float table[] = {0.917013228f, 4.0f, 0.0116168158f, 4.94852648e-05f, 0.475922674f};
  std::vector<float> s(heads);
  for (int h = 0; h < heads; ++h) s[h] = table[h % 5];
  return s;
}

std::vector<float> SiluedQkv(size_t n, uint32_t seed) {
  std::vector<float> qkv = RandomVector(n, seed, -2.f, 2.f);
  for (float& x : qkv) x = x / (1.f + std::exp(-x));
  return qkv;
}

// Runs `steps` decode steps of `num_seqs` sequences whose states sit in a pool of num_slots at
// `slots`, and checks every step's output and the final pool against the CPU reference.
void CheckDecode(int heads, int dim, const std::vector<int32_t>& slots, int64_t num_slots, int steps,
                 uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << heads << " heads x " << dim << ", " << slots.size() << " sequences");
  const int64_t num_seqs = static_cast<int64_t>(slots.size());
  const int64_t head_state = static_cast<int64_t>(dim) * dim, seq_state = heads * head_state;
  const std::vector<float> slopes = Slopes(heads);
  std::vector<float> pool = RandomVector(static_cast<size_t>(num_slots * seq_state), seed, -0.5f, 0.5f);
  DeviceBuffer dpool = ToDevice(pool), dslopes = ToDevice(slopes), dslots = ToDevice(slots);
  DeviceBuffer dout = DeviceArray<float>(static_cast<size_t>(num_seqs * heads * dim));
  const LightningShape shape{heads, dim, slopes.data(), 256};
  for (int step = 0; step < steps; ++step) {
    SCOPED_TRACE(::testing::Message() << "step " << step);
    const std::vector<float> qkv = SiluedQkv(static_cast<size_t>(num_seqs * heads * 3 * dim), seed + 1 + step);
    std::vector<float> expected(static_cast<size_t>(num_seqs * heads * dim)), out_tol(expected.size());
    std::vector<float> state_tol(pool.size(), 0.f);
    for (int64_t i = 0; i < num_seqs; ++i) {
      float* S = pool.data() + slots[i] * seq_state;
      const float* x = qkv.data() + i * heads * 3 * dim;
      for (int h = 0; h < heads; ++h) {  // tolerances from the magnitudes of the terms
        const float lambda = std::exp(-slopes[h]);
        const float *q = x + h * 3 * dim, *k = q + dim, *v = k + dim;
        for (int a = 0; a < dim; ++a)
          for (int b = 0; b < dim; ++b) {
            const int64_t e = slots[i] * seq_state + h * head_state + a * dim + b;
            state_tol[e] = 1e-6f * (std::fabs(lambda * pool[e]) + std::fabs(k[a] * v[b])) + 1e-30f;
          }
      }
      reference::LightningRecurrence(shape, x, 1, S, expected.data() + i * heads * dim);
      for (int h = 0; h < heads; ++h)
        for (int b = 0; b < dim; ++b) {
          double m = 0;
          for (int a = 0; a < dim; ++a) m += std::fabs(x[h * 3 * dim + a] * S[h * head_state + a * dim + b]);
          out_tol[(i * heads + h) * dim + b] = static_cast<float>(1e-5 * m + 1e-30);
        }
    }
    DeviceBuffer dqkv = ToDevice(qkv);
    LightningDecodeParams p;
    p.shape = LightningShape{heads, dim, dslopes.as<float>(), 256};
    p.qkv = dqkv.as<float>();
    p.num_seqs = num_seqs;
    p.state_pool = dpool.as<float>();
    p.num_slots = num_slots;
    p.slots = dslots.as<int32_t>();
    p.out = dout.as<float>();
    ASSERT_THAT(LightningDecode(p, nullptr), IsOk());
    ExpectClose(ToHost<float>(dout, expected.size()), expected, out_tol, "LightningDecode out");
    ExpectClose(ToHost<float>(dpool, pool.size()), pool, state_tol, "LightningDecode state");
  }
}

TEST(CudaLightningDecodeTest, MatchesCpuRecurrenceOnOddShapes) {
  MMX_SKIP_WITHOUT_GPU();
  // 20 and 36: float4 columns with row groups that do not divide D; 5 and 7: scalar columns.
  CheckDecode(3, 20, {0}, 1, 3, 1);
  CheckDecode(2, 36, {2, 0}, 3, 3, 2);
  CheckDecode(5, 5, {1, 3, 0}, 4, 2, 3);
  CheckDecode(1, 7, {0}, 1, 2, 4);
}

TEST(CudaLightningDecodeTest, MatchesCpuRecurrenceAtTheModelShape) {
  MMX_SKIP_WITHOUT_GPU();
  // One lightning layer: 64 heads x 128 (MODEL.md §3), a batch of 3 sequences in a pool of 4,
  // one slot (2) left alone.
  CheckDecode(64, 128, {3, 0, 1}, 4, 2, 5);
}

TEST(CudaLightningDecodeTest, InvalidSlotWritesNanAndLeavesThePoolAlone) {
  MMX_SKIP_WITHOUT_GPU();
  const int heads = 2, dim = 8;
  const std::vector<float> slopes = Slopes(heads);
  const std::vector<float> pool = RandomVector(heads * dim * dim, 9);
  DeviceBuffer dpool = ToDevice(pool), dslopes = ToDevice(slopes), dslots = ToDevice(std::vector<int32_t>{1});
  DeviceBuffer dqkv = ToDevice(SiluedQkv(heads * 3 * dim, 10)), dout = DeviceArray<float>(heads * dim);
  LightningDecodeParams p;
  p.shape = LightningShape{heads, dim, dslopes.as<float>(), 256};
  p.qkv = dqkv.as<float>();
  p.num_seqs = 1;
  p.state_pool = dpool.as<float>();
  p.num_slots = 1;  // slot 1 is out of range
  p.slots = dslots.as<int32_t>();
  p.out = dout.as<float>();
  ASSERT_THAT(LightningDecode(p, nullptr), IsOk());
  for (float o : ToHost<float>(dout, heads * dim)) EXPECT_TRUE(std::isnan(o));
  EXPECT_EQ(ToHost<float>(dpool, pool.size()), pool);
}

}  // namespace
}  // namespace mmx::kernels::cuda
