// CUDA RmsNorm, SiluInPlace, SiluMul, SigmoidMulInPlace, Axpby and ApplyRope against kernels/cpu's
// reference loops (Axpby, which kernels/ lacks, against its formula in double).
// Tolerances: RmsNorm 1e-5 relative (a tree-ordered fp32 sum of squares); SiluInPlace, SiluMul
// and SigmoidMulInPlace 1e-6 relative (CUDA's expf is within 2 ulp of glibc's); Axpby
// 2^-23 (|alpha a| + |beta b|), the bound of its three fp32 roundings; RoPE 2e-6 absolute for
// |x| <= 1, as the CPU test (sincosf within 2 ulp). Device tests: Skipped without a GPU.
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

std::vector<float> Relative(const std::vector<float>& expected, float rel) {
  std::vector<float> tol(expected.size());
  for (size_t i = 0; i < tol.size(); ++i) tol[i] = rel * std::fabs(expected[i]) + 1e-30f;
  return tol;
}

TEST(CudaRmsNormTest, MatchesCpuReferenceOnOddAndModelWidths) {
  MMX_SKIP_WITHOUT_GPU();
  // 6144: the layer norms (eps 1e-5); 8192: the lightning output norm (eps 1e-6).
  const struct {
    int64_t tokens, n;
    float eps;
  } cases[] = {{1, 1, 1e-5f}, {3, 7, 1e-5f}, {2, 33, 1e-5f}, {5, 1000, 1e-6f}, {4, 6144, 1e-5f}, {3, 8192, 1e-6f}};
  uint32_t seed = 1;
  for (const auto& c : cases) {
    SCOPED_TRACE(::testing::Message() << c.tokens << " x " << c.n);
    const std::vector<float> x = RandomVector(static_cast<size_t>(c.tokens * c.n), seed++, -3.f, 3.f);
    const std::vector<float> gamma = RandomVector(static_cast<size_t>(c.n), seed++, 0.5f, 1.5f);
    std::vector<float> expected(x.size());
    reference::RmsNorm(x.data(), c.tokens, c.n, gamma.data(), c.eps, expected.data());
    DeviceBuffer dx = ToDevice(x), dg = ToDevice(gamma), dout = DeviceArray<float>(x.size());
    ASSERT_THAT(RmsNorm(dx.as<float>(), c.tokens, c.n, dg.as<float>(), c.eps, dout.as<float>(), nullptr), IsOk());
    ExpectClose(ToHost<float>(dout, x.size()), expected, Relative(expected, 1e-5f), "RmsNorm");
    // In place.
    ASSERT_THAT(RmsNorm(dx.as<float>(), c.tokens, c.n, dg.as<float>(), c.eps, dx.as<float>(), nullptr), IsOk());
    ExpectClose(ToHost<float>(dx, x.size()), expected, Relative(expected, 1e-5f), "RmsNorm in place");
  }
}

TEST(CudaActivationTest, SiluMulAndSigmoidGateMatchCpuReference) {
  MMX_SKIP_WITHOUT_GPU();
  // 9216: one token's expert hidden (F); 8192: the lightning gate (N * D); 100003: odd, several waves.
  for (int64_t n : {1, 7, 1000, 8192, 9216, 100003}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    const std::vector<float> gate = RandomVector(static_cast<size_t>(n), 3, -12.f, 12.f);
    const std::vector<float> up = RandomVector(static_cast<size_t>(n), 4, -2.f, 2.f);
    std::vector<float> silu(n), gated = up;
    reference::SiluMul(gate.data(), up.data(), n, silu.data());
    reference::SigmoidMulInPlace(gate.data(), gated.data(), n);
    DeviceBuffer dgate = ToDevice(gate), dup = ToDevice(up), dout = DeviceArray<float>(n);
    ASSERT_THAT(SiluMul(dgate.as<float>(), dup.as<float>(), n, dout.as<float>(), nullptr), IsOk());
    ExpectClose(ToHost<float>(dout, n), silu, Relative(silu, 1e-6f), "SiluMul");
    ASSERT_THAT(SiluMul(dgate.as<float>(), dup.as<float>(), n, dgate.as<float>(), nullptr), IsOk());  // out = gate
    ExpectClose(ToHost<float>(dgate, n), silu, Relative(silu, 1e-6f), "SiluMul aliasing gate");
    dgate = ToDevice(gate);
    ASSERT_THAT(SigmoidMulInPlace(dgate.as<float>(), dup.as<float>(), n, nullptr), IsOk());
    ExpectClose(ToHost<float>(dup, n), gated, Relative(gated, 1e-6f), "SigmoidMulInPlace");
  }
}

TEST(CudaActivationTest, SiluInPlaceMatchesCpuReference) {
  MMX_SKIP_WITHOUT_GPU();
  // 24576: one token's fused lightning qkv (N * 3 * D), which SiLU runs on in place.
  for (int64_t n : {1, 7, 1000, 24576, 100003}) {
    SCOPED_TRACE(::testing::Message() << "n " << n);
    const std::vector<float> x = RandomVector(static_cast<size_t>(n), 5, -12.f, 12.f);
    std::vector<float> expected = x;
    reference::SiluInPlace(expected.data(), n);
    DeviceBuffer dx = ToDevice(x);
    ASSERT_THAT(SiluInPlace(dx.as<float>(), n, nullptr), IsOk());
    ExpectClose(ToHost<float>(dx, n), expected, Relative(expected, 1e-6f), "SiluInPlace");
  }
}

TEST(CudaAxpbyTest, MatchesTheFormulaAndMayWriteOverEitherInput) {
  MMX_SKIP_WITHOUT_GPU();
  // 6144 * 3: a residual update of three tokens of width H.
  const struct {
    float alpha, beta;
  } coefficients[] = {{1.f, 1.f}, {0.7f, -1.3f}, {2.5f, 0.f}, {-0.125f, 3.f}};
  for (int64_t n : {1, 7, 18432, 100003}) {
    for (const auto& c : coefficients) {
      SCOPED_TRACE(::testing::Message() << "n " << n << ", alpha " << c.alpha << ", beta " << c.beta);
      const std::vector<float> a = RandomVector(static_cast<size_t>(n), 6, -4.f, 4.f);
      const std::vector<float> b = RandomVector(static_cast<size_t>(n), 7, -4.f, 4.f);
      std::vector<float> expected(a.size()), tol(a.size());
      for (size_t i = 0; i < a.size(); ++i) {
        const double x = static_cast<double>(c.alpha) * a[i], y = static_cast<double>(c.beta) * b[i];
        expected[i] = static_cast<float>(x + y);
        tol[i] = static_cast<float>(std::ldexp(std::fabs(x) + std::fabs(y), -23)) + 1e-30f;
      }
      DeviceBuffer da = ToDevice(a), db = ToDevice(b), dout = DeviceArray<float>(a.size());
      ASSERT_THAT(Axpby(c.alpha, da.as<float>(), c.beta, db.as<float>(), n, dout.as<float>(), nullptr), IsOk());
      ExpectClose(ToHost<float>(dout, a.size()), expected, tol, "Axpby");
      ASSERT_THAT(Axpby(c.alpha, da.as<float>(), c.beta, db.as<float>(), n, da.as<float>(), nullptr), IsOk());
      ExpectClose(ToHost<float>(da, a.size()), expected, tol, "Axpby into a");
      da = ToDevice(a);
      ASSERT_THAT(Axpby(c.alpha, da.as<float>(), c.beta, db.as<float>(), n, db.as<float>(), nullptr), IsOk());
      ExpectClose(ToHost<float>(db, a.size()), expected, tol, "Axpby into b");
    }
  }
}

TEST(CudaRopeTest, RotatesPairsHalfARotaryDimApartAndLeavesTheRestAlone) {
  MMX_SKIP_WITHOUT_GPU();
  // head_dim 6, rotary_dim 4: pairs (0,2) and (1,3) rotate; dims 4 and 5 pass through.
  const std::vector<float> x0 = {1, 2, 3, 4, 5, 6, /*head 1*/ -1, 0.5f, 2, -2, 7, 8};
  const std::vector<int64_t> pos = {3};
  const std::vector<float> inv_freq = {1.f, 0.5f};
  const float c0 = std::cos(3.f), s0 = std::sin(3.f), c1 = std::cos(1.5f), s1 = std::sin(1.5f);
  const std::vector<float> expected = {1 * c0 - 3 * s0, 2 * c1 - 4 * s1,    3 * c0 + 1 * s0,
                                       4 * c1 + 2 * s1, 5,                  6,
                                       -1 * c0 - 2 * s0, 0.5f * c1 + 2 * s1, 2 * c0 - 1 * s0,
                                       -2 * c1 + 0.5f * s1, 7,              8};
  DeviceBuffer dx = ToDevice(x0), dpos = ToDevice(pos), dfreq = ToDevice(inv_freq);
  ASSERT_THAT(ApplyRope(dx.as<float>(), 1, 2, 6, 4, dpos.as<int64_t>(), dfreq.as<float>(), nullptr), IsOk());
  ExpectClose(ToHost<float>(dx, x0.size()), expected, {1e-6f}, "rope");
}

TEST(CudaRopeTest, MatchesCpuReferenceAtModelShapeAndLargePositions) {
  MMX_SKIP_WITHOUT_GPU();
  // MiniMax-Text-01 softmax layers: 64 query heads x 128, rotary_dim 64, theta 1e7 (MODEL.md §4.2);
  // and an odd shape: 3 heads x 10, rotary_dim 6.
  const struct {
    int heads, head_dim, rotary;
    float theta;
  } shapes[] = {{64, 128, 64, 1e7f}, {3, 10, 6, 1e4f}};
  const std::vector<int64_t> pos = {0, 1, 2, 1000, 65535, 1000003, 10239999};
  const int64_t tokens = static_cast<int64_t>(pos.size());
  for (const auto& s : shapes) {
    SCOPED_TRACE(::testing::Message() << s.heads << " heads x " << s.head_dim);
    std::vector<float> inv_freq(s.rotary / 2);
    for (int i = 0; i < s.rotary / 2; ++i) inv_freq[i] = 1.f / std::pow(s.theta, 2.f * i / s.rotary);
    const std::vector<float> x0 = RandomVector(static_cast<size_t>(tokens * s.heads * s.head_dim), 4);
    std::vector<float> expected = x0;
    reference::ApplyRope(expected.data(), tokens, s.heads, s.head_dim, s.rotary, pos.data(), inv_freq.data());
    DeviceBuffer dx = ToDevice(x0), dpos = ToDevice(pos), dfreq = ToDevice(inv_freq);
    ASSERT_THAT(ApplyRope(dx.as<float>(), tokens, s.heads, s.head_dim, s.rotary, dpos.as<int64_t>(),
                          dfreq.as<float>(), nullptr),
                IsOk());
    ExpectClose(ToHost<float>(dx, x0.size()), expected, {2e-6f}, "rope");
  }
}

}  // namespace
}  // namespace mmx::kernels::cuda
