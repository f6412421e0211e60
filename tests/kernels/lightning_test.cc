// LightningAttention: the block form (reference and fast) equals the token-by-token recurrence
// from a non-zero incoming state, for several block sizes and lengths that are not a multiple of
// the block; chunked calls leave the same state as one call; fast decay never overflows.
#include <algorithm>
#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "kernels/kernels.h"
#include "tests/kernels/kernel_test_util.h"

namespace mmx::kernels {
namespace {

using testing::ForEachIsa;
using testing::RandomVector;

// Decay rates spanning MODEL.md's table: half-life under a token up to thousands of tokens, and
// one much faster than any real layer (exp(+s*255) would overflow for every one but the last).
const std::vector<float> kSlopes = {0.917013228f, 4.0f, 0.0116168158f, 4.94852648e-05f};

struct Inputs {
  LightningShape shape;
  std::vector<float> qkv, state0;
};

Inputs MakeInputs(int heads, int dim, int64_t n, uint32_t seed) {
  Inputs in;
  in.shape = LightningShape{heads, dim, kSlopes.data(), 256};
  in.qkv = RandomVector(static_cast<size_t>(n * heads * 3 * dim), seed, -2.f, 2.f);
  for (float& x : in.qkv) x = x / (1.f + std::exp(-x));  // SiLU'd, like the model's q/k/v
  in.state0 = RandomVector(static_cast<size_t>(heads * dim * dim), seed + 1, -0.5f, 0.5f);
  return in;
}

// The recurrence in double precision: the oracle. With `magnitude` it runs on |q|, |k|, |v| and
// |S0| instead, giving for every output and state element the sum of the magnitudes of its
// terms; fp32 rounding in any summation order is bounded by a small multiple of eps times that.
struct Oracle {
  std::vector<double> out, state;
};
Oracle Recurrence(const Inputs& in, int64_t n, bool magnitude) {
  const int N = in.shape.num_heads, D = in.shape.head_dim;
  auto val = [&](float x) { return magnitude ? std::fabs(static_cast<double>(x)) : static_cast<double>(x); };
  Oracle r;
  r.state.resize(in.state0.size());
  for (size_t i = 0; i < r.state.size(); ++i) r.state[i] = val(in.state0[i]);
  r.out.assign(static_cast<size_t>(n * N * D), 0.0);
  for (int h = 0; h < N; ++h) {
    const double lambda = std::exp(-static_cast<double>(in.shape.slopes[h]));
    double* S = r.state.data() + static_cast<size_t>(h) * D * D;
    for (int64_t t = 0; t < n; ++t) {
      const float* q = in.qkv.data() + (t * N + h) * 3 * D;
      for (int a = 0; a < D; ++a)
        for (int b = 0; b < D; ++b) S[a * D + b] = lambda * S[a * D + b] + val(q[D + a]) * val(q[2 * D + b]);
      for (int b = 0; b < D; ++b) {
        double acc = 0;
        for (int a = 0; a < D; ++a) acc += val(q[a]) * S[a * D + b];
        r.out[(t * N + h) * D + b] = acc;
      }
    }
  }
  return r;
}

// Expects got to match want.exact within rel times the largest term magnitude in each row of
// `width` (one head's output vector, or one head's state).
void ExpectRowsClose(const std::vector<float>& got, const std::vector<double>& want,
                     const std::vector<double>& magnitude, int64_t width, double rel, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t r = 0; r * width < got.size(); ++r) {
    double scale = 0;
    for (int64_t c = 0; c < width; ++c) scale = std::max(scale, magnitude[r * width + c]);
    for (int64_t c = 0; c < width; ++c) {
      const double err = std::fabs(got[r * width + c] - want[r * width + c]);
      if (!(err <= rel * scale + 1e-30)) {
        ADD_FAILURE() << what << ": row " << r << " col " << c << " got " << got[r * width + c] << " want "
                      << want[r * width + c] << " (row term magnitude " << scale << ")";
        return;
      }
    }
  }
}

// Checks one call's output and final state against the double recurrence.
void ExpectMatchesRecurrence(const Inputs& in, int64_t n, const std::vector<float>& out,
                             const std::vector<float>& state) {
  const Oracle exact = Recurrence(in, n, false), mag = Recurrence(in, n, true);
  const int D = in.shape.head_dim;
  ExpectRowsClose(out, exact.out, mag.out, D, 1e-5, "out");
  ExpectRowsClose(state, exact.state, mag.state, static_cast<int64_t>(D) * D, 1e-5, "state");
}

TEST(LightningTest, ReferenceBlockFormEqualsRecurrence) {
  const int heads = 4, dim = 16;
  for (int block : {1, 7, 64, 256}) {
    for (int64_t n : {2, 5, 40, 300}) {
      SCOPED_TRACE(::testing::Message() << "block " << block << " n " << n);
      Inputs in = MakeInputs(heads, dim, n, static_cast<uint32_t>(block * 1000 + n));
      in.shape.block_size = block;
      std::vector<float> state = in.state0, out(static_cast<size_t>(n * heads * dim));
      reference::LightningAttention(in.shape, in.qkv.data(), n, state.data(), out.data());
      ExpectMatchesRecurrence(in, n, out, state);
      // And the fp32 token-by-token recurrence the decode path uses.
      std::vector<float> rec_state = in.state0, rec_out(out.size());
      reference::LightningRecurrence(in.shape, in.qkv.data(), n, rec_state.data(), rec_out.data());
      ExpectMatchesRecurrence(in, n, rec_out, rec_state);
    }
  }
}

TEST(LightningTest, FastPathEqualsRecurrence) {
  const int heads = 4;
  for (int dim : {16, 20, 128}) {  // 20: vector tiles plus scalar columns
    for (int block : {1, 7, 64, 256}) {
      for (int64_t n : {1, 2, 3, 8, 17, 40, 300}) {
        if (dim == 128 && n > 40 && block != 256) continue;  // keeps the test fast
        SCOPED_TRACE(::testing::Message() << "dim " << dim << " block " << block << " n " << n);
        Inputs in = MakeInputs(heads, dim, n, static_cast<uint32_t>(dim * 7 + block * 1000 + n));
        in.shape.block_size = block;
        ForEachIsa([&](Isa) {
          std::vector<float> state = in.state0, out(static_cast<size_t>(n * heads * dim), NAN);
          LightningAttention(in.shape, in.qkv.data(), n, state.data(), out.data());
          ExpectMatchesRecurrence(in, n, out, state);
        });
      }
    }
  }
}

TEST(LightningTest, ChunkedCallsLeaveTheSameStateAsOneCall) {
  const int heads = 4, dim = 32;
  const int64_t chunks[] = {1, 5, 1, 40, 3, 1};
  int64_t n = 0;
  for (int64_t c : chunks) n += c;
  Inputs in = MakeInputs(heads, dim, n, 77);
  in.shape.block_size = 16;
  const int64_t qkv_row = heads * 3 * dim, out_row = heads * dim;
  ForEachIsa([&](Isa) {
    std::vector<float> one_state = in.state0, one_out(static_cast<size_t>(n * out_row));
    LightningAttention(in.shape, in.qkv.data(), n, one_state.data(), one_out.data());
    std::vector<float> state = in.state0, out(one_out.size(), NAN);
    int64_t t = 0;
    for (int64_t c : chunks) {
      LightningAttention(in.shape, in.qkv.data() + t * qkv_row, c, state.data(), out.data() + t * out_row);
      t += c;
    }
    ExpectMatchesRecurrence(in, n, one_out, one_state);
    ExpectMatchesRecurrence(in, n, out, state);
  });
}

TEST(LightningTest, DecodeStepFromZeroStateIsQDotKTimesV) {
  // One token from S = 0: S = k^T v and o = (q . k) v exactly.
  const int dim = 8;
  const float slope = 0.5f;
  LightningShape shape{1, dim, &slope, 256};
  std::vector<float> qkv = RandomVector(3 * dim, 5);
  float qk = 0;
  for (int a = 0; a < dim; ++a) qk += qkv[a] * qkv[dim + a];
  ForEachIsa([&](Isa) {
    std::vector<float> state(dim * dim, 0.f), out(dim);
    LightningAttention(shape, qkv.data(), 1, state.data(), out.data());
    for (int a = 0; a < dim; ++a)
      for (int b = 0; b < dim; ++b) EXPECT_NEAR(state[a * dim + b], qkv[dim + a] * qkv[2 * dim + b], 1e-7f);
    for (int b = 0; b < dim; ++b) EXPECT_NEAR(out[b], qk * qkv[2 * dim + b], 1e-6f);
  });
}

TEST(LightningTest, StaysFiniteWithFastDecayOverFullBlocks) {
  const float slope = 50.f;  // lambda^255 underflows to 0; lambda^-255 would be inf
  LightningShape shape{1, 16, &slope, 256};
  const int64_t n = 600;
  std::vector<float> qkv = RandomVector(static_cast<size_t>(n * 3 * 16), 6);
  ForEachIsa([&](Isa) {
    std::vector<float> state(16 * 16, 1.f), out(static_cast<size_t>(n * 16));
    LightningAttention(shape, qkv.data(), n, state.data(), out.data());
    for (float v : out) ASSERT_TRUE(std::isfinite(v));
    for (float v : state) ASSERT_TRUE(std::isfinite(v));
    // With lambda ~ 0 each output is (q_t . k_t) v_t.
    const float* q = qkv.data() + (n - 1) * 48;
    float qk = 0;
    for (int a = 0; a < 16; ++a) qk += q[a] * q[16 + a];
    EXPECT_NEAR(out[(n - 1) * 16 + 3], qk * q[32 + 3], 1e-5f);
  });
}

}  // namespace
}  // namespace mmx::kernels
