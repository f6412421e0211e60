#include "model/safetensors.h"

#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "base/bf16.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/process.h"
#include "tests/testing/status_matchers.h"

namespace mmx::model {
namespace {

namespace fs = std::filesystem;
using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using Json = nlohmann::json;

const std::string kGoldenShard =
    MMX_TEST_DATA_DIR "/golden/tiny-a/model-00002-of-00002.safetensors";

using ::mmx::testing::ReadFile;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string LengthPrefix(uint64_t n) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * i));
  return out;
}

// A file with the given header text and `data_size` zero bytes of data.
std::string RawFile(const std::string& header, size_t data_size) {
  return LengthPrefix(header.size()) + header + std::string(data_size, '\0');
}

std::vector<uint8_t> Bf16Bytes(const std::vector<float>& values) {
  std::vector<uint8_t> out(values.size() * 2);
  for (size_t i = 0; i < values.size(); ++i) {
    const uint16_t v = FloatToBf16(values[i]);
    std::memcpy(&out[2 * i], &v, 2);
  }
  return out;
}

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           (std::string("mmx_") + info->test_suite_name() + "_" + info->name() + "_" +
            std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Writes `bytes` to DIR/t.safetensors and opens it.
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenBytes(const std::string& bytes) {
    WriteFile(Path(), bytes);
    return SafetensorsFile::Open(Path());
  }
  // A one-tensor header with the given entry.
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> OpenEntry(const Json& entry, size_t data) {
    return OpenBytes(RawFile(Json{{"w", entry}}.dump(), data));
  }
  std::string Path() const { return (dir_ / "t.safetensors").string(); }

  fs::path dir_;
};

TEST_F(SafetensorsTest, WritesAndReadsBackEveryDtype) {
  std::vector<TensorToWrite> tensors;
  tensors.push_back({"b", DType::kBF16, {2, 3}, Bf16Bytes({1, 2, 3, 4, 5, -6})});
  std::vector<uint8_t> f32(4 * 2);
  const float f32_values[2] = {0.5f, -1.25f};
  std::memcpy(f32.data(), f32_values, sizeof f32_values);
  tensors.push_back({"a.f32", DType::kF32, {2}, f32});
  tensors.push_back({"half", DType::kF16, {1}, {0x00, 0x3c}});  // 1.0 in F16
  tensors.push_back({"empty", DType::kBF16, {0, 4}, {}});
  ASSERT_THAT(WriteSafetensors(Path(), tensors), IsOk());
  EXPECT_FALSE(fs::exists(Path() + ".partial"));

  // Header length is a multiple of 8 and the metadata says "pt".
  const std::string raw = ReadFile(Path());
  uint64_t header_size = 0;
  std::memcpy(&header_size, raw.data(), 8);
  EXPECT_EQ(header_size % 8, 0u);
  EXPECT_EQ(Json::parse(raw.substr(8, header_size))["__metadata__"]["format"], "pt");
  EXPECT_EQ(raw.size(), 8 + header_size + 12 + 8 + 2);

  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(Path());
  ASSERT_THAT(file, IsOk());
  ASSERT_EQ((*file)->tensors().size(), 4u);
  const TensorInfo* b = (*file)->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_THAT(b->shape, ElementsAre(2, 3));
  EXPECT_EQ(b->num_elements(), 6);
  EXPECT_EQ(b->num_bytes, 12u);
  EXPECT_EQ(b->file, Path());
  EXPECT_EQ(std::memcmp(b->data, tensors[0].bytes.data(), 12), 0);
  const TensorInfo* a = (*file)->Find("a.f32");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->dtype, DType::kF32);
  // Data is contiguous in the order given: "b", then "a.f32".
  EXPECT_EQ(static_cast<const char*>(a->data) - static_cast<const char*>(b->data), 12);
  float read[2];
  std::memcpy(read, a->data, sizeof read);
  EXPECT_EQ(read[0], 0.5f);
  EXPECT_EQ(read[1], -1.25f);
  EXPECT_EQ((*file)->Find("half")->dtype, DType::kF16);
  EXPECT_EQ((*file)->Find("empty")->num_bytes, 0u);
  EXPECT_EQ((*file)->Find("missing"), nullptr);
}

TEST_F(SafetensorsTest, OpensGoldenShard) {
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(kGoldenShard);
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ((*file)->tensors().size(), 125u);
  const TensorInfo* lm_head = (*file)->Find("lm_head.weight");
  ASSERT_NE(lm_head, nullptr);
  EXPECT_THAT(lm_head->shape, ElementsAre(512, 96));
  EXPECT_EQ(lm_head->dtype, DType::kBF16);
  EXPECT_EQ(lm_head->num_bytes, 512u * 96 * 2);
}

TEST_F(SafetensorsTest, MissingFileIsNotFound) {
  EXPECT_THAT(SafetensorsFile::Open(Path()),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("t.safetensors: no such file")));
}

TEST_F(SafetensorsTest, RefusesFileShorterThanTheLengthPrefix) {
  EXPECT_THAT(OpenBytes("abc"), StatusIs(absl::StatusCode::kDataLoss,
                                         AllOf(HasSubstr("t.safetensors: file is 3 bytes"),
                                               HasSubstr("truncated"))));
}

TEST_F(SafetensorsTest, RefusesHeaderLengthBelowTwo) {
  EXPECT_THAT(OpenBytes(LengthPrefix(1) + "{}"),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header length 1 is too small")));
}

TEST_F(SafetensorsTest, RefusesHeaderLengthAboveTheFormatLimit) {
  EXPECT_THAT(OpenBytes(LengthPrefix(200'000'000) + "{}"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("header length 200000000 exceeds the format's limit")));
}

TEST_F(SafetensorsTest, RefusesHeaderLengthPastTheEndOfTheFile) {
  EXPECT_THAT(OpenBytes(LengthPrefix(100) + "{\"a\": 1}"),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("header length 100 runs past the end of the file (16 bytes)")));
}

TEST_F(SafetensorsTest, RefusesMalformedHeaderJson) {
  EXPECT_THAT(OpenBytes(RawFile("{\"w\": {\"dtype\": ", 0)),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("t.safetensors: header is not valid JSON"),
                             HasSubstr("parse error"))));
}

// A number beyond double's range is valid JSON syntax but no value: a clear error, not an abort.
TEST_F(SafetensorsTest, RefusesAHeaderNumberBeyondDoubleRange) {
  EXPECT_THAT(OpenBytes(RawFile("{\"w\": {\"dtype\": \"F32\", \"shape\": [1E400], \"data_offsets\": [0, 4]}}", 4)),
              StatusIs(absl::StatusCode::kDataLoss, AllOf(HasSubstr("t.safetensors: header is not valid JSON"),
                                                          HasSubstr("1E400"))));
}

TEST_F(SafetensorsTest, RefusesHeaderThatIsNotAnObject) {
  EXPECT_THAT(OpenBytes(RawFile("[1, 2]  ", 0)),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("header is not a JSON object")));
}

TEST_F(SafetensorsTest, RefusesUnknownDtypeNamingTheTensor) {
  EXPECT_THAT(OpenEntry({{"dtype", "Q9"}, {"shape", {2}}, {"data_offsets", {0, 4}}}, 4),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("tensor 'w' has unknown dtype 'Q9'")));
}

TEST_F(SafetensorsTest, RefusesValidDtypeMmxDoesNotComputeWith) {
  EXPECT_THAT(OpenEntry({{"dtype", "I64"}, {"shape", {2}}, {"data_offsets", {0, 16}}}, 16),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("tensor 'w' has dtype I64"),
                             HasSubstr("BF16, F16 and F32"))));
}

TEST_F(SafetensorsTest, RefusesMalformedShape) {
  EXPECT_THAT(OpenEntry({{"dtype", "BF16"}, {"shape", {-2}}, {"data_offsets", {0, 4}}}, 4),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("tensor 'w' has a shape [-2] that is not a list of sizes")));
  EXPECT_THAT(OpenEntry({{"dtype", "BF16"}, {"data_offsets", {0, 4}}}, 4),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("tensor 'w' has no 'shape'")));
}

TEST_F(SafetensorsTest, RefusesMalformedDataOffsets) {
  EXPECT_THAT(OpenEntry({{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {0}}}, 4),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("tensor 'w' has no 'data_offsets'")));
  EXPECT_THAT(OpenEntry({{"dtype", "BF16"}, {"shape", {2}}, {"data_offsets", {4, 0}}}, 4),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("begin after end")));
}

TEST_F(SafetensorsTest, RefusesOffsetPastTheEndOfTheDataSection) {
  EXPECT_THAT(OpenEntry({{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {0, 8}}}, 6),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("t.safetensors: tensor 'w' data_offsets [0, 8] end past the end "
                                 "of the data section (6 bytes); the file is truncated or "
                                 "corrupt")));
}

TEST_F(SafetensorsTest, RefusesOffsetsThatDisagreeWithTheShape) {
  EXPECT_THAT(OpenEntry({{"dtype", "F32"}, {"shape", {3}}, {"data_offsets", {0, 8}}}, 12),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("data_offsets [0, 8] span 8 bytes but shape [3] of F32 needs 12")));
}

TEST_F(SafetensorsTest, RefusesOverlappingTensors) {
  const Json header = {
      {"first", {{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {0, 8}}}},
      {"second", {{"dtype", "BF16"}, {"shape", {4}}, {"data_offsets", {6, 14}}}}};
  EXPECT_THAT(OpenBytes(RawFile(header.dump(), 16)),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("tensor 'second' data_offsets [6, 14] overlap tensor 'first' "
                                 "[0, 8]")));
}

TEST_F(SafetensorsTest, RefusesTruncatedGoldenShard) {
  std::string bytes = ReadFile(kGoldenShard);
  bytes.resize(bytes.size() - 100);
  EXPECT_THAT(OpenBytes(bytes),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("end past the end of the data section"),
                             HasSubstr("truncated"))));
}

TEST_F(SafetensorsTest, WriteRefusesBytesThatDisagreeWithTheShape) {
  std::vector<TensorToWrite> tensors;
  tensors.push_back({"w", DType::kBF16, {3}, Bf16Bytes({1, 2})});
  EXPECT_THAT(WriteSafetensors(Path(), tensors),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 'w' has 4 bytes but shape [3] of BF16 needs 6")));
  EXPECT_FALSE(fs::exists(Path()));
}

TEST_F(SafetensorsTest, WriterRefusesDuplicateNames) {
  EXPECT_THAT(SafetensorsWriter::Create(Path(), {{"w", DType::kBF16, {1}},
                                                 {"w", DType::kBF16, {1}}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'w'")));
}

TEST_F(SafetensorsTest, WriterStreamsDataAcrossCallsAndChecksTheTotal) {
  absl::StatusOr<std::unique_ptr<SafetensorsWriter>> writer = SafetensorsWriter::Create(
      Path(), {{"x", DType::kF32, {2}}, {"y", DType::kBF16, {2, 2}}});
  ASSERT_THAT(writer, IsOk());
  EXPECT_EQ((*writer)->data_size(), 16u);
  const std::vector<uint8_t> bytes(16, 7);
  ASSERT_THAT((*writer)->Write(bytes.data(), 5), IsOk());
  EXPECT_THAT((*writer)->Close(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                           HasSubstr("only 5 of 16 data bytes")));
  EXPECT_THAT((*writer)->Write(bytes.data(), 12),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("would exceed")));
  ASSERT_THAT((*writer)->Write(bytes.data() + 5, 11), IsOk());
  EXPECT_FALSE(fs::exists(Path()));  // still PATH.partial
  ASSERT_THAT((*writer)->Close(), IsOk());
  writer->reset();
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file = SafetensorsFile::Open(Path());
  ASSERT_THAT(file, IsOk());
  EXPECT_THAT((*file)->Find("y")->shape, ElementsAre(2, 2));
}

// Writes a ~9 MB file (more than one O_DIRECT staging buffer, and a size no block divides)
// in `mode` and returns its bytes.
std::string WriteBigFile(const std::string& path, SafetensorsWriter::Mode mode, bool* direct) {
  std::vector<uint8_t> bytes(9'000'006);
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<uint8_t>(i * 7 + (i >> 13));
  absl::StatusOr<std::unique_ptr<SafetensorsWriter>> writer = SafetensorsWriter::Create(
      path, {{"a", DType::kBF16, {3}}, {"b", DType::kF32, {2'250'000}}}, mode);
  EXPECT_THAT(writer, IsOk());
  if (!writer.ok()) return "";
  *direct = (*writer)->is_direct();
  // Odd-sized pieces, so staging boundaries fall mid-write.
  for (size_t at = 0; at < bytes.size();) {
    const size_t n = std::min<size_t>(1'000'003, bytes.size() - at);
    EXPECT_THAT((*writer)->Write(bytes.data() + at, n), IsOk());
    at += n;
  }
  EXPECT_THAT((*writer)->Close(), IsOk());
  return ReadFile(path);
}

TEST_F(SafetensorsTest, DirectModeWritesTheSameBytesAsBuffered) {
  bool direct = false;
  const std::string buffered =
      WriteBigFile((dir_ / "buffered").string(), SafetensorsWriter::Mode::kBuffered, &direct);
  EXPECT_FALSE(direct);
  const std::string unbuffered =
      WriteBigFile((dir_ / "direct").string(), SafetensorsWriter::Mode::kDirect, &direct);
  EXPECT_EQ(buffered.size(), unbuffered.size());
  EXPECT_TRUE(buffered == unbuffered);
  absl::StatusOr<std::unique_ptr<SafetensorsFile>> file =
      SafetensorsFile::Open((dir_ / "direct").string());
  ASSERT_THAT(file, IsOk());
  EXPECT_EQ((*file)->Find("b")->num_bytes, 9'000'000u);
}

TEST_F(SafetensorsTest, DirectModeWritesTheSameBytesOnTmpfs) {
  // tmpfs refuses O_DIRECT before Linux 6.6 (the writer falls back) and accepts it since.
  if (!fs::is_directory("/dev/shm")) GTEST_SKIP() << "no /dev/shm";
  const fs::path path = fs::path("/dev/shm") / (dir_.filename().string() + ".safetensors");
  bool direct = true;
  const std::string bytes = WriteBigFile(path.string(), SafetensorsWriter::Mode::kDirect, &direct);
  fs::remove(path);
  bool unused;
  EXPECT_TRUE(bytes == WriteBigFile((dir_ / "ref").string(), SafetensorsWriter::Mode::kBuffered,
                                    &unused));
}

TEST_F(SafetensorsTest, AbandonedWriterLeavesNoFile) {
  {
    absl::StatusOr<std::unique_ptr<SafetensorsWriter>> writer =
        SafetensorsWriter::Create(Path(), {{"x", DType::kF32, {2}}});
    ASSERT_THAT(writer, IsOk());
  }
  EXPECT_FALSE(fs::exists(Path()));
  EXPECT_FALSE(fs::exists(Path() + ".partial"));
}

TEST_F(SafetensorsTest, WriterReportsAnUnwritableDirectory) {
  EXPECT_THAT(SafetensorsWriter::Create((dir_ / "no/such/dir/t.safetensors").string(), {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot create")));
}

}  // namespace
}  // namespace mmx::model
