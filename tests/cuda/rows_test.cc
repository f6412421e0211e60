// CUDA EmbedRows, GatherRows and ScaleScatterRows. EmbedRows against kernels/cpu's
// reference::WeightAt (the fp32 value of each stored element) for BF16, F16 and F32 tables;
// the gather and the scaled scatter against the plain loops of model/cpu_layer_ops.h, written
// out here. Tolerance: none, all three are exact (widening conversions; one fp32 product per
// element). Also checked: ids or indices out of range give NaN rows (or no write), rows no
// index names are left alone. Device tests: Skipped without a GPU.
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

using ::mmx::kernels::testing::RandomVector;
using ::mmx::kernels::testing::TestWeights;
using ::mmx::testing::IsOk;
using testing::DeviceArray;
using testing::ToDevice;
using testing::ToHost;

// A device copy of a TestWeights table, and its view with the device pointer.
struct DeviceWeights {
  DeviceBuffer buffer;
  WeightView view;
};
DeviceWeights ToDevice(const TestWeights& w) {
  DeviceWeights d;
  d.buffer = w.dtype == DType::kF32 ? testing::ToDevice(w.full) : testing::ToDevice(w.half);
  d.view = w.View();
  d.view.data = d.buffer.data();
  return d;
}

// Expects every element of row r of `got` ([rows, width]) to be NaN.
void ExpectNanRow(const std::vector<float>& got, int64_t r, int64_t width, const char* what) {
  for (int64_t c = 0; c < width; ++c) {
    if (!std::isnan(got[r * width + c])) {
      ADD_FAILURE() << what << ": row " << r << " col " << c << " is " << got[r * width + c] << ", want NaN";
      return;
    }
  }
}

TEST(CudaEmbedRowsTest, MatchesTheStoredRowsInEveryDtype) {
  MMX_SKIP_WITHOUT_GPU();
  // 6144: the hidden size H; 7: a width that fits no vector.
  for (DType dtype : {DType::kBF16, DType::kF16, DType::kF32}) {
    for (int64_t cols : {7, 6144}) {
      SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << " x " << cols);
      const int64_t rows = 1000;
      const TestWeights w(dtype, rows, cols, 11);
      const std::vector<int32_t> ids = {0, 999, 5, 5, 123, 998, 1, 0};
      const int64_t T = static_cast<int64_t>(ids.size());
      std::vector<float> expected(static_cast<size_t>(T * cols));
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < cols; ++c) expected[t * cols + c] = reference::WeightAt(w.View(), ids[t], c);
      const DeviceWeights dw = ToDevice(w);
      DeviceBuffer dids = ToDevice(ids), dout = DeviceArray<float>(expected.size());
      ASSERT_THAT(EmbedRows(dw.view, dids.as<int32_t>(), T, dout.as<float>(), nullptr), IsOk());
      EXPECT_EQ(ToHost<float>(dout, expected.size()), expected);
    }
  }
}

TEST(CudaEmbedRowsTest, IdsOutOfRangeGiveNanRows) {
  MMX_SKIP_WITHOUT_GPU();
  const int64_t rows = 10, cols = 33;
  const TestWeights w(DType::kBF16, rows, cols, 12);
  const std::vector<int32_t> ids = {3, 10, -1, 9, 2147483647};
  const DeviceWeights dw = ToDevice(w);
  DeviceBuffer dids = ToDevice(ids), dout = DeviceArray<float>(ids.size() * cols);
  ASSERT_THAT(EmbedRows(dw.view, dids.as<int32_t>(), static_cast<int64_t>(ids.size()), dout.as<float>(), nullptr),
              IsOk());
  const std::vector<float> got = ToHost<float>(dout, ids.size() * cols);
  for (int64_t r : {1, 2, 4}) ExpectNanRow(got, r, cols, "EmbedRows");
  for (int64_t r : {0, 3}) {
    for (int64_t c = 0; c < cols; ++c) EXPECT_EQ(got[r * cols + c], reference::WeightAt(w.View(), ids[r], c));
  }
}

TEST(CudaGatherRowsTest, CopiesTheIndexedRowsInOrder) {
  MMX_SKIP_WITHOUT_GPU();
  for (int64_t width : {1, 7, 6144}) {
    SCOPED_TRACE(::testing::Message() << "width " << width);
    const int64_t src_rows = 6;
    const std::vector<float> src = RandomVector(static_cast<size_t>(src_rows * width), 13);
    // The MoE dispatch order: rows repeat (a token chosen by two experts) and come unsorted.
    const std::vector<int64_t> index = {4, 0, 5, 4, 2, 2, 1, 3, 0};
    const int64_t n = static_cast<int64_t>(index.size());
    std::vector<float> expected(static_cast<size_t>(n * width));
    for (int64_t r = 0; r < n; ++r)
      for (int64_t c = 0; c < width; ++c) expected[r * width + c] = src[index[r] * width + c];
    DeviceBuffer dsrc = ToDevice(src), dindex = ToDevice(index), ddst = DeviceArray<float>(expected.size());
    ASSERT_THAT(GatherRows(dsrc.as<float>(), dindex.as<int64_t>(), n, width, ddst.as<float>(), nullptr), IsOk());
    EXPECT_EQ(ToHost<float>(ddst, expected.size()), expected);
  }
}

TEST(CudaGatherRowsTest, NegativeIndexGivesANanRow) {
  MMX_SKIP_WITHOUT_GPU();
  const int64_t width = 40;
  const std::vector<float> src = RandomVector(static_cast<size_t>(2 * width), 14);
  DeviceBuffer dsrc = ToDevice(src), dindex = ToDevice(std::vector<int64_t>{1, -1}), ddst = DeviceArray<float>(2 * width);
  ASSERT_THAT(GatherRows(dsrc.as<float>(), dindex.as<int64_t>(), 2, width, ddst.as<float>(), nullptr), IsOk());
  const std::vector<float> got = ToHost<float>(ddst, 2 * width);
  EXPECT_EQ(std::vector<float>(got.begin(), got.begin() + width), std::vector<float>(src.begin() + width, src.end()));
  ExpectNanRow(got, 1, width, "GatherRows");
}

TEST(CudaScaleScatterRowsTest, ScalesEachRowIntoItsSlotAndLeavesTheOthers) {
  MMX_SKIP_WITHOUT_GPU();
  for (int64_t width : {1, 7, 6144}) {
    SCOPED_TRACE(::testing::Message() << "width " << width);
    // The MoE combine: 7 expert-output rows back to their (distinct) slots among 10, scaled by
    // the routing weights; slots 2, 5 and 9 are nobody's and must keep their contents.
    const std::vector<int64_t> index = {3, 0, 8, 1, 7, 4, 6};
    const int64_t n = static_cast<int64_t>(index.size()), dst_rows = 10;
    const std::vector<float> src = RandomVector(static_cast<size_t>(n * width), 15, -3.f, 3.f);
    const std::vector<float> scale = RandomVector(static_cast<size_t>(n), 16, 0.f, 1.f);
    const std::vector<float> dst0 = RandomVector(static_cast<size_t>(dst_rows * width), 17);
    std::vector<float> expected = dst0;
    for (int64_t r = 0; r < n; ++r) {
      const float s = scale[r];
      for (int64_t c = 0; c < width; ++c) expected[index[r] * width + c] = s * src[r * width + c];
    }
    DeviceBuffer dsrc = ToDevice(src), dscale = ToDevice(scale), dindex = ToDevice(index), ddst = ToDevice(dst0);
    ASSERT_THAT(ScaleScatterRows(dsrc.as<float>(), dscale.as<float>(), dindex.as<int64_t>(), n, width,
                                 ddst.as<float>(), nullptr),
                IsOk());
    EXPECT_EQ(ToHost<float>(ddst, expected.size()), expected);
  }
}

TEST(CudaScaleScatterRowsTest, NegativeIndexWritesNothing) {
  MMX_SKIP_WITHOUT_GPU();
  const int64_t width = 9;
  const std::vector<float> src = RandomVector(static_cast<size_t>(2 * width), 18);
  const std::vector<float> dst0 = RandomVector(static_cast<size_t>(2 * width), 19);
  DeviceBuffer dsrc = ToDevice(src), dscale = ToDevice(std::vector<float>{2.f, 0.5f});
  DeviceBuffer dindex = ToDevice(std::vector<int64_t>{-1, 0}), ddst = ToDevice(dst0);
  ASSERT_THAT(ScaleScatterRows(dsrc.as<float>(), dscale.as<float>(), dindex.as<int64_t>(), 2, width,
                               ddst.as<float>(), nullptr),
              IsOk());
  std::vector<float> expected = dst0;
  for (int64_t c = 0; c < width; ++c) expected[c] = 0.5f * src[width + c];
  EXPECT_EQ(ToHost<float>(ddst, expected.size()), expected);
}

}  // namespace
}  // namespace mmx::kernels::cuda
