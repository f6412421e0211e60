// CUDA LightningDecode against kernels/cpu's reference recurrence (one token per sequence,
// each sequence's state in its own pool slot), over several steps; and LightningPrefill against
// kernels/cpu's reference LightningAttention (the block form for n > 1), in one call and in
// chunks, from a non-zero state.
// Decode tolerances: the state 1e-6 of |lambda * S| + |k_a v_b| per element (one fused
// multiply-add from the same inputs; only lambda = expf(-s) may differ by an ulp); the output
// 1e-5 of sum_a |q_a S_ab| per element, as the CPU tests (fp32 sums in another order).
// Prefill tolerance, per head (its D outputs of a token, or its D x D state):
// (1e-5 + n * 2^-22) times the largest sum of term magnitudes (the recurrence run on |q|, |k|,
// |v|, |S0|). 1e-5 is the CPU tests' bound for fp32 sums in another order; n * 2^-22 covers the
// decay: the GPU's lambda^d is d roundings of expf(-s) (within 2 ulp), the reference's exp(-s*d)
// one, so a term d <= n steps back may carry a relative error of d * 2^-22.
// LightningPrefillBlocked (the tensor-core block form, bf16 products) against kernels/cpu's
// LightningAttention (kernels.h), per element: 6 * 2^-8 of the sum of the magnitudes of the
// terms of that output (sum_a |q_a| S^_ab, S^ the recurrence run on |k|, |v|, |S0|), 4 * 2^-8 of
// S^_ab for the state. Why: rounding to bf16 (8 significant bits, nearest even) changes a value by
// a relative 2^-8 at most, and every term goes through at most four such roundings: an intra term
// (q_i . k_j) e v_j through q, k, the masked score A and v; an inter term q_i S0 through q and
// bf16(S0), whose carried error is at most that of the state; a state term k_j (e v_j) through k
// and bf16(e v_j). So the output is within 4 * 2^-8 and the state within 2 * 2^-8 of the term
// magnitudes (plus fp32 sums and expf, ~1e-5, and the CPU's own fp32 error, ~1e-5); the
// tolerances leave 1.5x and 2x of that. (A CPU emulation of the kernel on these inputs measured
// at most 1.1 * 2^-8 and 1.9 * 2^-8.)
// Device tests: Skipped without a GPU.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/cuda/kernels_cuda.h"
#include "kernels/kernels.h"
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
// `slots`, and checks every step's output and pool against the CPU reference.
// NOTE: each step starts the device from the reference's pool. The two round a step differently
// (the reference, contracted by the compiler, may take fma(lambda, S, k v); the kernel takes
// fma(k, v, lambda S)), and carried over several steps those ulps outgrow the one-step
// tolerance wherever an element cancels towards 0.
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
    if (step > 0) dpool = ToDevice(pool);
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

// The magnitudes the errors scale with: for output (t, h, b) the sum of the magnitudes of the
// terms the exact recurrence adds up, sum_a |q_a| S^_ab, where S^ is the recurrence run on |k|,
// |v| and |S0|; for the state, S^ after the n tokens. out [n, N * D], state [N, D, D].
struct TermMagnitudes {
  std::vector<double> out, state;
};
TermMagnitudes Magnitudes(int heads, int dim, const std::vector<float>& slopes, const std::vector<float>& qkv,
                          int64_t n, const std::vector<float>& state0) {
  const int64_t D = dim, head_state = D * D;
  TermMagnitudes mag{std::vector<double>(static_cast<size_t>(n * heads * D)), std::vector<double>(state0.size())};
  for (int h = 0; h < heads; ++h) {
    const double lambda = std::exp(-static_cast<double>(slopes[h]));
    double* S = mag.state.data() + h * head_state;
    for (int64_t e = 0; e < head_state; ++e) S[e] = std::fabs(state0[h * head_state + e]);
    for (int64_t t = 0; t < n; ++t) {
      const float* q = qkv.data() + (t * heads + h) * 3 * D;
      for (int64_t a = 0; a < D; ++a)
        for (int64_t b = 0; b < D; ++b) S[a * D + b] = lambda * S[a * D + b] + std::fabs(q[D + a] * q[2 * D + b]);
      for (int64_t b = 0; b < D; ++b) {
        double m = 0;
        for (int64_t a = 0; a < D; ++a) m += std::fabs(q[a]) * S[a * D + b];
        mag.out[(t * heads + h) * D + b] = m;
      }
    }
  }
  return mag;
}

// For each head h of each token t (out) or each head's state: the largest of its magnitudes,
// times (1e-5 + n * 2^-22), broadcast to the row.
struct PrefillTolerance {
  std::vector<float> out, state;
};
PrefillTolerance PrefillTol(int heads, int dim, const std::vector<float>& slopes, const std::vector<float>& qkv,
                            int64_t n, const std::vector<float>& state0) {
  const double rel = 1e-5 + static_cast<double>(n) * std::ldexp(1.0, -22);
  const TermMagnitudes mag = Magnitudes(heads, dim, slopes, qkv, n, state0);
  PrefillTolerance tol{std::vector<float>(mag.out.size()), std::vector<float>(mag.state.size())};
  for (size_t row = 0; row < mag.out.size(); row += dim) {
    const double row_max = *std::max_element(mag.out.begin() + row, mag.out.begin() + row + dim);
    std::fill(tol.out.begin() + row, tol.out.begin() + row + dim, static_cast<float>(rel * row_max + 1e-30));
  }
  const size_t head_state = static_cast<size_t>(dim) * dim;
  for (size_t h0 = 0; h0 < mag.state.size(); h0 += head_state) {
    const double state_max = *std::max_element(mag.state.begin() + h0, mag.state.begin() + h0 + head_state);
    std::fill(tol.state.begin() + h0, tol.state.begin() + h0 + head_state,
              static_cast<float>(rel * state_max + 1e-30));
  }
  return tol;
}

// One LightningPrefill over n tokens (in calls of `chunks` tokens each when given, which must
// add up to n) from a random state, checked against the CPU reference's single call.
void CheckPrefill(int heads, int dim, int64_t n, uint32_t seed, const std::vector<int64_t>& chunks = {}) {
  SCOPED_TRACE(::testing::Message() << heads << " heads x " << dim << ", n " << n << ", " << chunks.size()
                                    << " chunks");
  const std::vector<float> slopes = Slopes(heads);
  const std::vector<float> qkv = SiluedQkv(static_cast<size_t>(n * heads * 3 * dim), seed);
  const std::vector<float> state0 = RandomVector(static_cast<size_t>(heads) * dim * dim, seed + 1, -0.5f, 0.5f);
  std::vector<float> state = state0, expected(static_cast<size_t>(n * heads * dim));
  reference::LightningAttention(LightningShape{heads, dim, slopes.data(), 256}, qkv.data(), n, state.data(),
                                expected.data());
  const PrefillTolerance tol = PrefillTol(heads, dim, slopes, qkv, n, state0);

  DeviceBuffer dqkv = ToDevice(qkv), dstate = ToDevice(state0), dslopes = ToDevice(slopes);
  DeviceBuffer dout = DeviceArray<float>(expected.size());
  const LightningShape shape{heads, dim, dslopes.as<float>(), 256};
  const std::vector<int64_t> calls = chunks.empty() ? std::vector<int64_t>{n} : chunks;
  int64_t t = 0;
  for (int64_t c : calls) {
    ASSERT_THAT(LightningPrefill(shape, dqkv.as<float>() + t * heads * 3 * dim, c, dstate.as<float>(),
                                 dout.as<float>() + t * heads * dim, nullptr),
                IsOk());
    t += c;
  }
  ASSERT_EQ(t, n);
  ExpectClose(ToHost<float>(dout, expected.size()), expected, tol.out, "LightningPrefill out");
  ExpectClose(ToHost<float>(dstate, state.size()), state, tol.state, "LightningPrefill state");
}

TEST(CudaLightningPrefillTest, MatchesCpuBlockFormOnOddShapes) {
  MMX_SKIP_WITHOUT_GPU();
  CheckPrefill(3, 20, 1, 21);    // one token: the CPU's recurrence path
  CheckPrefill(1, 7, 2, 22);
  CheckPrefill(5, 5, 17, 23);    // a 16-token staging chunk plus one
  CheckPrefill(2, 36, 40, 24);   // two column tiles, the second 4 wide; 3 warps of rows
  CheckPrefill(2, 33, 100, 25);  // a one-column tile
  CheckPrefill(2, 16, 300, 26);  // past the CPU's 256-token block
  CheckPrefill(1, 512, 3, 27);   // the widest head: 32 warps, 4-token staging chunks
}

TEST(CudaLightningPrefillTest, ChunkedCallsMatchOneCpuCall) {
  MMX_SKIP_WITHOUT_GPU();
  CheckPrefill(3, 24, 100, 31, {1, 37, 62});
  CheckPrefill(2, 128, 50, 32, {16, 1, 33});
}

TEST(CudaLightningPrefillTest, MatchesCpuBlockFormAtTheModelShape) {
  MMX_SKIP_WITHOUT_GPU();
  // One lightning layer: 64 heads x 128 (MODEL.md §3), 260 tokens: one full CPU block and 4
  // more; 16 GPU staging chunks and 4 more.
  CheckPrefill(64, 128, 260, 41);
}

TEST(CudaLightningPrefillTest, StaysFiniteWithFastDecay) {
  MMX_SKIP_WITHOUT_GPU();
  // lambda = exp(-50) is ~2e-22: every output is (q_t . k_t) v_t alone, and nothing overflows.
  const int dim = 16;
  const int64_t n = 600;
  const std::vector<float> slopes = {50.f};
  const std::vector<float> qkv = RandomVector(static_cast<size_t>(n * 3 * dim), 6);
  std::vector<float> expected(static_cast<size_t>(n * dim));
  for (int64_t t = 0; t < n; ++t) {
    const float* q = qkv.data() + t * 3 * dim;
    double qk = 0;
    for (int a = 0; a < dim; ++a) qk += static_cast<double>(q[a]) * q[dim + a];
    for (int b = 0; b < dim; ++b) expected[t * dim + b] = static_cast<float>(qk * q[2 * dim + b]);
  }
  DeviceBuffer dqkv = ToDevice(qkv), dstate = ToDevice(std::vector<float>(dim * dim, 1.f));
  DeviceBuffer dslopes = ToDevice(slopes), dout = DeviceArray<float>(expected.size());
  ASSERT_THAT(LightningPrefill(LightningShape{1, dim, dslopes.as<float>(), 256}, dqkv.as<float>(), n,
                               dstate.as<float>(), dout.as<float>(), nullptr),
              IsOk());
  ExpectClose(ToHost<float>(dout, expected.size()), expected, {1e-5f}, "LightningPrefill, fast decay");
  for (float s : ToHost<float>(dstate, dim * dim)) ASSERT_TRUE(std::isfinite(s));
}

// Element-wise tolerances of LightningPrefillBlocked (the file comment says why).
constexpr double kBlockedOutRel = 6.0 / 256 + 1e-5;
constexpr double kBlockedStateRel = 4.0 / 256 + 1e-5;

std::vector<float> Scaled(const std::vector<double>& magnitude, double rel) {
  std::vector<float> tol(magnitude.size());
  for (size_t i = 0; i < tol.size(); ++i) tol[i] = static_cast<float>(rel * magnitude[i] + 1e-30);
  return tol;
}

// LightningPrefillBlocked over n tokens (in calls of `chunks` tokens each when given, adding up
// to n) from a random non-zero state, against one call of the CPU LightningAttention.
void CheckBlocked(int heads, int dim, int64_t n, uint32_t seed, const std::vector<int64_t>& chunks = {}) {
  SCOPED_TRACE(::testing::Message() << "LightningPrefillBlocked, " << heads << " heads x " << dim << ", n " << n
                                    << ", " << chunks.size() << " chunks");
  const std::vector<float> slopes = Slopes(heads);
  const std::vector<float> qkv = SiluedQkv(static_cast<size_t>(n * heads * 3 * dim), seed);
  const std::vector<float> state0 = RandomVector(static_cast<size_t>(heads) * dim * dim, seed + 1, -0.5f, 0.5f);
  std::vector<float> state = state0, expected(static_cast<size_t>(n * heads * dim));
  ::mmx::kernels::LightningAttention(LightningShape{heads, dim, slopes.data(), 256}, qkv.data(), n, state.data(),
                                     expected.data());
  const TermMagnitudes mag = Magnitudes(heads, dim, slopes, qkv, n, state0);

  DeviceBuffer dqkv = ToDevice(qkv), dstate = ToDevice(state0), dslopes = ToDevice(slopes);
  DeviceBuffer dout = DeviceArray<float>(expected.size());
  const LightningShape shape{heads, dim, dslopes.as<float>(), 256};
  const std::vector<int64_t> calls = chunks.empty() ? std::vector<int64_t>{n} : chunks;
  int64_t t = 0;
  for (int64_t c : calls) {
    ASSERT_THAT(LightningPrefillBlocked(shape, dqkv.as<float>() + t * heads * 3 * dim, c, dstate.as<float>(),
                                        dout.as<float>() + t * heads * dim, nullptr),
                IsOk());
    t += c;
  }
  ASSERT_EQ(t, n);
  ExpectClose(ToHost<float>(dout, expected.size()), expected, Scaled(mag.out, kBlockedOutRel),
              "LightningPrefillBlocked out");
  ExpectClose(ToHost<float>(dstate, state.size()), state, Scaled(mag.state, kBlockedStateRel),
              "LightningPrefillBlocked state");
}

TEST(CudaLightningPrefillBlockedTest, MatchesCpuAtTheModelShape) {
  MMX_SKIP_WITHOUT_GPU();
  // One lightning layer: 64 heads x 128, 300 tokens: four full 64-token blocks and one of 44.
  CheckBlocked(64, 128, 300, 51);
}

TEST(CudaLightningPrefillBlockedTest, MatchesCpuAtTheGoldenHeadDimWithOddLengths) {
  MMX_SKIP_WITHOUT_GPU();
  CheckBlocked(3, 64, 77, 52);  // the golden tiny model's D = 64; a 13-token last block
  CheckBlocked(5, 64, 1, 53);   // one token: a block of one row
  CheckBlocked(2, 128, 64, 54);  // exactly one block
  CheckBlocked(2, 64, 65, 55);   // one block and one token
}

TEST(CudaLightningPrefillBlockedTest, ChunkedCallsMatchOneCpuCall) {
  MMX_SKIP_WITHOUT_GPU();
  CheckBlocked(3, 64, 77, 56, {1, 63, 13});
  CheckBlocked(2, 128, 167, 57, {16, 1, 150});
}

TEST(CudaLightningPrefillBlockedTest, StaysFiniteWithFastDecay) {
  MMX_SKIP_WITHOUT_GPU();
  // lambda = exp(-50) is ~2e-22: every output is (q_t . k_t) v_t alone, and no decay factor
  // overflows (only exp(-s d) with d >= 0 is ever formed).
  const int dim = 64;
  const int64_t n = 200;
  const std::vector<float> slopes = {50.f};
  const std::vector<float> qkv = RandomVector(static_cast<size_t>(n * 3 * dim), 7);
  std::vector<float> expected(static_cast<size_t>(n * dim)), tol(expected.size());
  for (int64_t t = 0; t < n; ++t) {
    const float* q = qkv.data() + t * 3 * dim;
    double qk = 0, magnitude = 0;
    for (int a = 0; a < dim; ++a) {
      qk += static_cast<double>(q[a]) * q[dim + a];
      magnitude += std::fabs(static_cast<double>(q[a]) * q[dim + a]);
    }
    for (int b = 0; b < dim; ++b) {
      expected[t * dim + b] = static_cast<float>(qk * q[2 * dim + b]);
      tol[t * dim + b] = static_cast<float>(kBlockedOutRel * magnitude * std::fabs(q[2 * dim + b]) + 1e-30);
    }
  }
  DeviceBuffer dqkv = ToDevice(qkv), dstate = ToDevice(std::vector<float>(dim * dim, 1.f));
  DeviceBuffer dslopes = ToDevice(slopes), dout = DeviceArray<float>(expected.size());
  ASSERT_THAT(LightningPrefillBlocked(LightningShape{1, dim, dslopes.as<float>(), 256}, dqkv.as<float>(), n,
                                      dstate.as<float>(), dout.as<float>(), nullptr),
              IsOk());
  ExpectClose(ToHost<float>(dout, expected.size()), expected, tol, "LightningPrefillBlocked, fast decay");
  for (float s : ToHost<float>(dstate, dim * dim)) ASSERT_TRUE(std::isfinite(s));
}

}  // namespace
}  // namespace mmx::kernels::cuda
