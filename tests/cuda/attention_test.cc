// CUDA CausalAttentionDecode against kernels/cpu's reference CausalAttention with one query
// (n = 1), at GQA groups of 1 to 12, head dims that are not multiples of 4 or 32, lengths
// around the 32-key warp tile and the split size, the model's shape at 32k keys, and the
// 256-wide head dim whose shared memory needs the opt-in above 48 KiB. And the prefill
// CausalAttention (n queries, the last n of total_len positions) against the same reference,
// at the same shapes with n around the 4-row block and the 32-key tile, whole prompts
// (n = total_len) and chunks after a cached prefix.
// Tolerance: 1e-5 absolute (q, k, v uniform in [-1, 1], so |out| <= 1), as the CPU tests: the
// scores, expf (within 2 ulp) and the split sums round differently from the double reference.
// Device tests: Skipped without a GPU.
#include <bit>
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

void CheckDecode(int heads, int kv_heads, int dim, int64_t total_len, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << heads << "/" << kv_heads << " heads x " << dim << ", " << total_len
                                    << " keys");
  const AttentionShape shape{heads, kv_heads, dim, 1.f / std::sqrt(static_cast<float>(dim))};
  const std::vector<float> q = RandomVector(static_cast<size_t>(heads) * dim, seed);
  const std::vector<float> k = RandomVector(static_cast<size_t>(total_len * kv_heads * dim), seed + 1);
  const std::vector<float> v = RandomVector(static_cast<size_t>(total_len * kv_heads * dim), seed + 2);
  std::vector<float> expected(q.size());
  reference::CausalAttention(shape, q.data(), 1, k.data(), v.data(), total_len, expected.data());

  DeviceBuffer dq = ToDevice(q), dk = ToDevice(k), dv = ToDevice(v), dout = DeviceArray<float>(q.size());
  const size_t workspace_bytes = CausalAttentionDecodeWorkspaceBytes(shape, total_len);
  DeviceBuffer workspace = DeviceArray<char>(workspace_bytes);
  CausalAttentionDecodeParams p;
  p.shape = shape;
  p.q = dq.as<float>();
  p.k = dk.as<float>();
  p.v = dv.as<float>();
  p.total_len = total_len;
  p.out = dout.as<float>();
  p.workspace = workspace.data();
  p.workspace_bytes = workspace_bytes;
  ASSERT_THAT(CausalAttentionDecode(p, nullptr), IsOk());
  ExpectClose(ToHost<float>(dout, q.size()), expected, {1e-5f}, "CausalAttentionDecode");
}

TEST(CudaAttentionDecodeTest, MatchesCpuReferenceOnOddShapes) {
  MMX_SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  const struct {
    int heads, kv_heads, dim;
  } shapes[] = {{1, 1, 16}, {3, 1, 20}, {4, 2, 7}, {12, 3, 100}, {12, 1, 33}, {8, 8, 128}};
  for (const auto& s : shapes)
    for (int64_t len : {1, 5, 31, 32, 33, 129, 300, 4097}) CheckDecode(s.heads, s.kv_heads, s.dim, len, seed += 3);
}

TEST(CudaAttentionDecodeTest, MatchesCpuReferenceAtTheModelShape) {
  MMX_SKIP_WITHOUT_GPU();
  // A softmax layer: 64 query heads, 8 KV heads x 128 (MODEL.md §4), at 1, 4k and 32k keys
  // (32k: 128 splits, the most the workspace allows).
  for (int64_t len : {1, 4096, 32768}) CheckDecode(64, 8, 128, len, 7);
}

TEST(CudaAttentionDecodeTest, MatchesCpuReferenceWithWideHeads) {
  MMX_SKIP_WITHOUT_GPU();
  CheckDecode(16, 2, 256, 1000, 9);  // 76 KiB of shared memory per block
  CheckDecode(2, 1, 200, 77, 10);
}

TEST(CudaAttentionDecodeTest, PicksOutTheOneMatchingKey) {
  MMX_SKIP_WITHOUT_GPU();
  // A query aligned with key 700 of 1000 and a large scale: the output is v[700].
  const int dim = 64;
  const int64_t len = 1000;
  std::vector<float> k = RandomVector(static_cast<size_t>(len * dim), 3, -0.1f, 0.1f);
  const std::vector<float> v = RandomVector(static_cast<size_t>(len * dim), 4);
  std::vector<float> q(dim, 0.f);
  for (int d = 0; d < dim; ++d) q[d] = k[700 * dim + d] = d % 2 == 0 ? 1.f : -1.f;
  DeviceBuffer dq = ToDevice(q), dk = ToDevice(k), dv = ToDevice(v), dout = DeviceArray<float>(dim);
  CausalAttentionDecodeParams p;
  p.shape = AttentionShape{1, 1, dim, 10.f};
  p.q = dq.as<float>();
  p.k = dk.as<float>();
  p.v = dv.as<float>();
  p.total_len = len;
  p.out = dout.as<float>();
  p.workspace_bytes = CausalAttentionDecodeWorkspaceBytes(p.shape, len);
  DeviceBuffer workspace = DeviceArray<char>(p.workspace_bytes);
  p.workspace = workspace.data();
  ASSERT_THAT(CausalAttentionDecode(p, nullptr), IsOk());
  const std::vector<float> expected(v.begin() + 700 * dim, v.begin() + 701 * dim);
  ExpectClose(ToHost<float>(dout, dim), expected, {1e-5f}, "one-hot attention");
}

void CheckPrefill(int heads, int kv_heads, int dim, int64_t n, int64_t total_len, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << heads << "/" << kv_heads << " heads x " << dim << ", " << n << " queries, "
                                    << total_len << " keys");
  const AttentionShape shape{heads, kv_heads, dim, 1.f / std::sqrt(static_cast<float>(dim))};
  const std::vector<float> q = RandomVector(static_cast<size_t>(n * heads * dim), seed);
  const std::vector<float> k = RandomVector(static_cast<size_t>(total_len * kv_heads * dim), seed + 1);
  const std::vector<float> v = RandomVector(static_cast<size_t>(total_len * kv_heads * dim), seed + 2);
  std::vector<float> expected(q.size());
  reference::CausalAttention(shape, q.data(), n, k.data(), v.data(), total_len, expected.data());
  DeviceBuffer dq = ToDevice(q), dk = ToDevice(k), dv = ToDevice(v), dout = DeviceArray<float>(q.size());
  ASSERT_THAT(CausalAttention(shape, dq.as<float>(), n, dk.as<float>(), dv.as<float>(), total_len, dout.as<float>(),
                              nullptr),
              IsOk());
  ExpectClose(ToHost<float>(dout, q.size()), expected, {1e-5f}, "CausalAttention");
}

TEST(CudaAttentionPrefillTest, MatchesCpuReferenceOnOddShapes) {
  MMX_SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  const struct {
    int heads, kv_heads, dim;
  } shapes[] = {{1, 1, 16}, {3, 1, 20}, {4, 2, 7}, {12, 3, 100}, {12, 1, 33}, {8, 8, 128}};
  // (n, total_len): one query; a whole prompt shorter than a block of rows, a key tile, and
  // longer than both; chunks after a cached prefix that is and is not a multiple of 32.
  const struct {
    int64_t n, total_len;
  } lengths[] = {{1, 1}, {1, 40}, {3, 3}, {5, 5}, {33, 33}, {70, 70}, {7, 40}, {64, 96}, {130, 300}};
  for (const auto& s : shapes)
    for (const auto& l : lengths) CheckPrefill(s.heads, s.kv_heads, s.dim, l.n, l.total_len, seed += 3);
}

TEST(CudaAttentionPrefillTest, MatchesCpuReferenceAtTheModelShape) {
  MMX_SKIP_WITHOUT_GPU();
  // A softmax layer: 64 query heads, 8 KV heads x 128 (MODEL.md §4): a 200-token prompt, and a
  // 64-token chunk after 936 cached tokens.
  CheckPrefill(64, 8, 128, 200, 200, 11);
  CheckPrefill(64, 8, 128, 64, 1000, 12);
}

TEST(CudaAttentionPrefillTest, MatchesCpuReferenceWithWideHeads) {
  MMX_SKIP_WITHOUT_GPU();
  CheckPrefill(16, 2, 256, 40, 100, 13);  // 70 KiB of shared memory per block
  CheckPrefill(2, 1, 200, 33, 77, 14);
}

TEST(CudaAttentionPrefillTest, EachQueryPicksOutItsOwnKey) {
  MMX_SKIP_WITHOUT_GPU();
  // Query i aligned with key 2i of 2n keys at a large scale: out[i] is v[2i], which query i may
  // see only because the mask is bottom-right aligned (query i at position n + i). The aligned
  // pairs are Hadamard rows (+-1, orthogonal), so query i scores 0 against every other pair.
  const int dim = 64;
  const int64_t n = 50, len = 2 * n;
  std::vector<float> k = RandomVector(static_cast<size_t>(len * dim), 5, -0.1f, 0.1f);
  const std::vector<float> v = RandomVector(static_cast<size_t>(len * dim), 6);
  std::vector<float> q(static_cast<size_t>(n * dim)), expected(q.size());
  for (int64_t i = 0; i < n; ++i) {
    for (int d = 0; d < dim; ++d) {
      q[i * dim + d] = k[2 * i * dim + d] = std::popcount(static_cast<uint64_t>(i & d)) % 2 == 0 ? 1.f : -1.f;
      expected[i * dim + d] = v[2 * i * dim + d];
    }
  }
  DeviceBuffer dq = ToDevice(q), dk = ToDevice(k), dv = ToDevice(v), dout = DeviceArray<float>(q.size());
  ASSERT_THAT(CausalAttention(AttentionShape{1, 1, dim, 10.f}, dq.as<float>(), n, dk.as<float>(), dv.as<float>(), len,
                              dout.as<float>(), nullptr),
              IsOk());
  ExpectClose(ToHost<float>(dout, q.size()), expected, {1e-5f}, "one-hot prefill attention");
}

}  // namespace
}  // namespace mmx::kernels::cuda
