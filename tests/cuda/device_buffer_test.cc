// DeviceCount, DeviceBuffer and PinnedHostBuffer. The first group runs everywhere and pins down
// what a machine without a GPU (or without a driver) sees; the second needs a device.
#include "kernels/cuda/device_buffer.h"

#include <cstdint>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/cuda/cuda_test_util.h"
#include "tests/testing/status_matchers.h"

namespace mmx::kernels::cuda {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;

bool HasDriver() {
  int version = 0;
  return cudaDriverGetVersion(&version) == cudaSuccess && version > 0;
}

TEST(CudaDeviceBufferTest, DeviceCountIsZeroNotAnErrorWithoutADriver) {
  absl::StatusOr<int> count = DeviceCount();
  ASSERT_THAT(count, IsOk());
  EXPECT_GE(*count, 0);
  if (!HasDriver()) {
    EXPECT_EQ(*count, 0);
  }
  // Asking again gives the same answer (without a driver every CUDA call keeps failing with
  // cudaErrorInsufficientDriver; DeviceCount must keep mapping that to 0).
  absl::StatusOr<int> again = DeviceCount();
  ASSERT_THAT(again, IsOk());
  EXPECT_EQ(*again, *count);
}

TEST(CudaDeviceBufferTest, AllocateFailsCleanlyWithoutAGpu) {
  absl::StatusOr<int> count = DeviceCount();
  ASSERT_THAT(count, IsOk());
  if (*count > 0) GTEST_SKIP() << "this machine has a GPU";
  EXPECT_THAT(DeviceBuffer::Allocate(1024, 0),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("DeviceBuffer::Allocate(1024 bytes) on cuda:0")));
  EXPECT_THAT(PinnedHostBuffer::Allocate(1024),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("PinnedHostBuffer::Allocate(1024 bytes)")));
}

TEST(CudaDeviceBufferTest, ZeroBytesNeedNoGpu) {
  absl::StatusOr<DeviceBuffer> buffer = DeviceBuffer::Allocate(0, 0);
  ASSERT_THAT(buffer, IsOk());
  EXPECT_EQ(buffer->data(), nullptr);
  EXPECT_EQ(buffer->size(), 0u);
  EXPECT_THAT(buffer->CopyFromHost(nullptr, 0), IsOk());
  absl::StatusOr<PinnedHostBuffer> pinned = PinnedHostBuffer::Allocate(0);
  ASSERT_THAT(pinned, IsOk());
  EXPECT_EQ(pinned->size(), 0u);
}

TEST(CudaDeviceBufferTest, RejectsANegativeDeviceOrdinal) {
  EXPECT_THAT(DeviceBuffer::Allocate(16, -1), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("got -1")));
}

TEST(CudaDeviceBufferTest, CopiesOutsideTheBufferAreOutOfRange) {
  DeviceBuffer empty;
  const float host[4] = {};
  float back[4];
  EXPECT_THAT(empty.CopyFromHost(host, sizeof host),
              StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("bytes [0, 16) are not inside a 0-byte")));
  EXPECT_THAT(empty.CopyToHost(back, 4, 8), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(empty.CopyFromHostAsync(host, 4, 0, nullptr), StatusIs(absl::StatusCode::kOutOfRange));
}

// Device tests (Skipped without a GPU).

TEST(CudaDeviceBufferTest, RoundTripsSynchronouslyAndThroughPinnedMemory) {
  MMX_SKIP_WITHOUT_GPU();
  std::vector<int32_t> host(1000);
  std::iota(host.begin(), host.end(), -500);
  DeviceBuffer buffer = testing::ToDevice(host);
  EXPECT_EQ(testing::ToHost<int32_t>(buffer, host.size()), host);

  absl::StatusOr<PinnedHostBuffer> pinned = PinnedHostBuffer::Allocate(host.size() * sizeof(int32_t));
  ASSERT_THAT(pinned, IsOk());
  cudaStream_t stream;
  ASSERT_THAT(CudaStatus(cudaStreamCreate(&stream), "cudaStreamCreate"), IsOk());
  for (size_t i = 0; i < host.size(); ++i) pinned->as<int32_t>()[i] = static_cast<int32_t>(3 * i);
  ASSERT_THAT(buffer.CopyFromHostAsync(pinned->data(), pinned->size(), 0, stream), IsOk());
  std::vector<int32_t> back(host.size());
  ASSERT_THAT(buffer.CopyToHostAsync(back.data(), 40, 400, stream), IsOk());  // elements 100..109
  ASSERT_THAT(CudaStatus(cudaStreamSynchronize(stream), "cudaStreamSynchronize"), IsOk());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(back[i], 3 * (100 + i));
  cudaStreamDestroy(stream);
}

TEST(CudaDeviceBufferTest, MoveTransfersOwnership) {
  MMX_SKIP_WITHOUT_GPU();
  absl::StatusOr<DeviceBuffer> a = DeviceBuffer::Allocate(256, 0);
  ASSERT_THAT(a, IsOk());
  void* data = a->data();
  DeviceBuffer b = std::move(*a);
  EXPECT_EQ(b.data(), data);
  EXPECT_EQ(b.size(), 256u);
  EXPECT_EQ(a->data(), nullptr);  // NOLINT(bugprone-use-after-move): moved-from is empty
  b = DeviceBuffer();             // frees
  EXPECT_EQ(b.data(), nullptr);
}

TEST(CudaDeviceBufferTest, AMissingDeviceIsInvalidArgument) {
  MMX_SKIP_WITHOUT_GPU();
  absl::StatusOr<int> count = DeviceCount();
  ASSERT_THAT(count, IsOk());
  EXPECT_THAT(DeviceBuffer::Allocate(16, *count), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CudaDeviceBufferTest, OutOfMemoryNamesTheRequestAndTheFreeBytes) {
  MMX_SKIP_WITHOUT_GPU();
  const size_t petabyte = size_t{1} << 50;
  EXPECT_THAT(DeviceBuffer::Allocate(petabyte, 0),
              StatusIs(absl::StatusCode::kResourceExhausted,
                       AllOf(HasSubstr("out of memory on cuda:0"), HasSubstr("asked for 1125899906842624 bytes"),
                             HasSubstr("bytes free of"))));
  // The failure is not sticky: the device still works.
  EXPECT_THAT(DeviceBuffer::Allocate(1024, 0), IsOk());
}

}  // namespace
}  // namespace mmx::kernels::cuda
