#include "base/npy.h"

#include <fstream>

#include "gtest/gtest.h"

namespace mmx {
namespace {

TEST(NpyTest, WritesVersion1HeaderPaddedTo64AndReadsBack) {
  const std::string path = ::testing::TempDir() + "/npy_test.npy";
  std::vector<float> data = {1.f, -2.f, 3.5f, 0.f, 7.f, 8.f};
  ASSERT_TRUE(WriteNpyF32(path, {2, 3}, data.data()).ok());
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  ASSERT_EQ(bytes.substr(0, 6), "\x93NUMPY");
  EXPECT_EQ(bytes[6], 1);
  const size_t header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
  EXPECT_EQ((10 + header_len) % 64, 0u);
  EXPECT_NE(bytes.find("'shape': (2, 3)"), std::string::npos);
  EXPECT_EQ(bytes.size(), 10 + header_len + data.size() * 4);
  auto back = ReadNpyF32(path);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(back->data, data);
}

TEST(NpyTest, AShapeLargerThanTheFileIsRefusedBeforeAllocating) {
  // Found by fuzzing: a 100-byte file whose header claims 444 million floats.
  const std::string path = ::testing::TempDir() + "/claims-too-much.npy";
  ASSERT_TRUE(WriteNpyF32(path, {2, 2}, std::vector<float>(4, 1.f).data()).ok());
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  for (const std::string& shape : {std::string("(2, 3)"), std::string("(88888888, 5)"),
                                   std::string("(9999999999, 9999999999, 9999)")}) {
    std::string forged = bytes;
    forged.replace(forged.find("(2, 2)"), 6, shape);
    std::ofstream(path, std::ios::binary | std::ios::trunc) << forged;
    auto read = ReadNpyF32(path);
    EXPECT_FALSE(read.ok()) << shape;
    EXPECT_EQ(read.status().code(), absl::StatusCode::kDataLoss) << shape;
  }
  ASSERT_TRUE(WriteNpyF32(path, {5, 0}, nullptr).ok());  // empty arrays still read
  auto empty = ReadNpyF32(path);
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_EQ(empty->shape, (std::vector<int64_t>{5, 0}));
}

}  // namespace
}  // namespace mmx
