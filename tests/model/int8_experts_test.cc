// Int8 experts: the dtype names, the owning Int8Matrix, and the release of the source pages.
// The engine with int8 experts, end to end against its bf16-expert path and against the fp32
// engine on the dequantized experts: tests/engine/precision_test.cc.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <fstream>
#include <string>
#include <vector>

#include "base/bf16.h"
#include "gtest/gtest.h"
#include "kernels/cpu/reference.h"
#include "model/int8_experts.h"
#include "tests/testing/status_matchers.h"

namespace mmx::model {
namespace {

using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;


TEST(ExpertDTypeTest, ParsesBf16AndInt8Only) {
  EXPECT_EQ(*ParseExpertDType("bf16"), ExpertDType::kBf16);
  EXPECT_EQ(*ParseExpertDType("int8"), ExpertDType::kInt8);
  EXPECT_THAT(ParseExpertDType("fp8"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'fp8'")));
  EXPECT_STREQ(ExpertDTypeName(ExpertDType::kInt8), "int8");
}

TEST(Int8MatrixTest, OwnsAnI8CopyThatSurvivesMoves) {
  std::vector<uint16_t> w(5 * 37);
  for (size_t i = 0; i < w.size(); ++i) w[i] = FloatToBf16(std::sin(0.37f * static_cast<float>(i)));
  const kernels::WeightView source{w.data(), DType::kBF16, 5, 37};
  std::vector<Int8Matrix> storage;
  storage.push_back(Int8Matrix::Quantize(source));
  const kernels::WeightView view = storage[0].view();
  for (int i = 0; i < 8; ++i) storage.push_back(Int8Matrix::Quantize(source));  // reallocates: moves
  EXPECT_EQ(storage[0].view().data, view.data);
  EXPECT_EQ(storage[0].view().scales, view.scales);
  EXPECT_EQ(view.dtype, DType::kI8);
  EXPECT_EQ(view.rows, 5);
  EXPECT_EQ(view.cols, 37);
  EXPECT_EQ(storage[0].bytes(), 5 * 37 + 5 * 4);
  EXPECT_EQ(WeightBytes(view), storage[0].bytes());
  std::vector<int8_t> q(w.size());
  std::vector<float> scales(5);
  kernels::reference::QuantizeInt8(source, q.data(), scales.data());
  EXPECT_EQ(std::vector<int8_t>(static_cast<const int8_t*>(view.data), static_cast<const int8_t*>(view.data) + q.size()), q);
  EXPECT_EQ(std::vector<float>(view.scales, view.scales + 5), scales);
}

int64_t ResidentBytes() {
  std::ifstream statm("/proc/self/statm");
  int64_t size = 0, resident = 0;
  statm >> size >> resident;
  return resident * sysconf(_SC_PAGESIZE);
}

TEST(ReleaseSourcePagesTest, DropsTheInteriorPagesOfAReadOnlyPrivateMapping) {
  // A 16 MiB file mapped the way checkpoints are (PROT_READ, MAP_PRIVATE), fully paged in.
  const int64_t page = sysconf(_SC_PAGESIZE), size = int64_t{16} << 20;
  char path[] = "/tmp/mmx_release_test_XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  unlink(path);
  std::vector<char> bytes(static_cast<size_t>(size));
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7 + 1);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(size));
  void* map = mmap(nullptr, static_cast<size_t>(size), PROT_READ, MAP_PRIVATE, fd, 0);
  ASSERT_NE(map, MAP_FAILED);
  const volatile char* p = static_cast<const char*>(map);
  int64_t sum = 0;
  for (int64_t off = 0; off < size; off += page) sum += p[off];
  const int64_t before = ResidentBytes();

  // A "matrix" from 100 bytes into the first page to 100 bytes into the last: its interior is
  // every page but the first and the last, which it shares with its neighbours.
  const kernels::WeightView w{static_cast<const char*>(map) + 100, DType::kBF16, 1, (size - page) / 2};
  EXPECT_EQ(ReleaseSourcePages(w), size - 2 * page);
  EXPECT_LT(ResidentBytes(), before - size / 2);
  // Nothing is lost: the pages come back from the file when read again.
  for (int64_t off = 0; off < size; off += 4099) ASSERT_EQ(p[off], bytes[static_cast<size_t>(off)]) << off;
  EXPECT_EQ(ReleaseSourcePages(kernels::WeightView{static_cast<const char*>(map) + 8, DType::kBF16, 1, 16}), 0);
  munmap(map, static_cast<size_t>(size));
  close(fd);
  (void)sum;
}

}  // namespace
}  // namespace mmx::model
