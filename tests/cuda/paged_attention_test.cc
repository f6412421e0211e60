// CUDA attention over a paged KV cache (kernels_cuda.h CausalAttentionPaged and
// CausalAttentionDecode with `paged`), fp32 and bf16 pages of 64 rows (model/kv_cache.h's
// layout), each page its own allocation, against kernels/cpu's CausalAttention over the same
// pages on the host (KvCacheView): decode and prefill chunks, lengths around the page and the
// 32-key tile, the model's shape. Tolerance 1e-5 as the contiguous tests: both read the same
// rounded values and sum in fp32. Device tests: Skipped without a GPU.
#include <cmath>
#include <cstdint>
#include <vector>

#include "base/bf16.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
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

constexpr int64_t kPageRows = 64;

// One cache (K or V) in pages, on the host (for the CPU kernel) and on the device.
struct Pages {
  std::vector<std::vector<uint16_t>> host_bf16;
  std::vector<std::vector<float>> host_f32;
  std::vector<const void*> host_pointers;
  std::vector<DeviceBuffer> device;
  DeviceBuffer table;  // device array of the device pages' addresses
};

Pages MakePages(const std::vector<float>& rows, int64_t width, DType dtype) {
  Pages p;
  const int64_t total = static_cast<int64_t>(rows.size()) / width;
  std::vector<const void*> device_pointers;
  for (int64_t r0 = 0; r0 < total; r0 += kPageRows) {
    const int64_t n = std::min(kPageRows, total - r0);
    if (dtype == DType::kBF16) {
      std::vector<uint16_t>& page = p.host_bf16.emplace_back(static_cast<size_t>(kPageRows * width), 0);
      for (int64_t i = 0; i < n * width; ++i) page[i] = FloatToBf16(rows[r0 * width + i]);
      p.host_pointers.push_back(page.data());
      p.device.push_back(ToDevice(page));
    } else {
      std::vector<float>& page = p.host_f32.emplace_back(static_cast<size_t>(kPageRows * width), 0.f);
      for (int64_t i = 0; i < n * width; ++i) page[i] = rows[r0 * width + i];
      p.host_pointers.push_back(page.data());
      p.device.push_back(ToDevice(page));
    }
    device_pointers.push_back(p.device.back().data());
  }
  p.table = ToDevice(device_pointers);
  return p;
}

void Check(int heads, int kv_heads, int dim, int64_t n, int64_t total_len, DType dtype, uint32_t seed) {
  SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " " << heads << "/" << kv_heads << " heads x " << dim
                                    << ", " << n << " queries, " << total_len << " keys");
  const AttentionShape shape{heads, kv_heads, dim, 1.f / std::sqrt(static_cast<float>(dim))};
  const int64_t width = int64_t{kv_heads} * dim;
  const std::vector<float> q = RandomVector(static_cast<size_t>(n * heads * dim), seed);
  Pages k = MakePages(RandomVector(static_cast<size_t>(total_len * width), seed + 1), width, dtype);
  Pages v = MakePages(RandomVector(static_cast<size_t>(total_len * width), seed + 2), width, dtype);

  KvCacheView host;
  host.dtype = dtype;
  host.block_tokens = kPageRows;
  host.key_blocks = k.host_pointers.data();
  host.value_blocks = v.host_pointers.data();
  std::vector<float> expected(q.size());
  kernels::CausalAttention(shape, q.data(), n, host, total_len, expected.data());

  PagedKv paged;
  paged.k_pages = k.table.as<const void* const>();
  paged.v_pages = v.table.as<const void* const>();
  paged.page_rows = kPageRows;
  paged.dtype = dtype;
  DeviceBuffer dq = ToDevice(q), dout = DeviceArray<float>(q.size());
  if (n == 1) {
    const size_t workspace_bytes = CausalAttentionDecodeWorkspaceBytes(shape, total_len);
    DeviceBuffer workspace = DeviceArray<char>(workspace_bytes);
    CausalAttentionDecodeParams p;
    p.shape = shape;
    p.q = dq.as<float>();
    p.paged = paged;
    p.total_len = total_len;
    p.out = dout.as<float>();
    p.workspace = workspace.data();
    p.workspace_bytes = workspace_bytes;
    ASSERT_THAT(CausalAttentionDecode(p, nullptr), IsOk());
    ExpectClose(ToHost<float>(dout, q.size()), expected, {1e-5f}, "paged decode");
  } else {
    ASSERT_THAT(CausalAttentionPaged(shape, dq.as<float>(), n, paged, total_len, dout.as<float>(), nullptr), IsOk());
    ExpectClose(ToHost<float>(dout, q.size()), expected, {1e-5f}, "paged prefill");
  }
}

TEST(CudaPagedAttentionTest, DecodeMatchesTheCpuKernelOverTheSamePages) {
  MMX_SKIP_WITHOUT_GPU();
  uint32_t seed = 1;
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    for (int64_t len : {1, 31, 64, 65, 129, 1000}) Check(8, 2, 128, 1, len, dtype, seed += 3);
    Check(64, 8, 128, 1, 4096, dtype, seed += 3);  // a softmax layer of the model
  }
}

TEST(CudaPagedAttentionTest, PrefillMatchesTheCpuKernelOverTheSamePages) {
  MMX_SKIP_WITHOUT_GPU();
  uint32_t seed = 100;
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    for (int64_t n : {2, 5, 64, 70}) Check(8, 2, 128, n, n, dtype, seed += 3);  // whole prompts
    Check(8, 2, 64, 33, 200, dtype, seed += 3);                                  // a chunk after a cached prefix
    Check(64, 8, 128, 256, 1024, dtype, seed += 3);
  }
}

}  // namespace
}  // namespace mmx::kernels::cuda
