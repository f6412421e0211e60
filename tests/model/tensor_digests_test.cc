#include "model/tensor_digests.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/status_matchers.h"

namespace mmx::model {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

TEST(TensorDigestsTest, Sha256OfTheStandardVector) {
  EXPECT_EQ(absl::BytesToHexString(Sha256("abc", 3)),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(TensorDigestsTest, EachTensorsDigestIsTheShaOfItsBytesAndNamesItsFile) {
  auto checkpoint = Checkpoint::Open(testing::GoldenDir());
  ASSERT_THAT(checkpoint, IsOk());
  const std::vector<std::string> names = (*checkpoint)->TensorNames();
  auto digests = ComputeTensorDigests(**checkpoint, names);
  ASSERT_THAT(digests, IsOk());
  ASSERT_EQ(digests->size(), names.size());
  for (const std::string& name : names) {
    const TensorInfo* info = (*checkpoint)->Find(name);
    EXPECT_EQ(digests->at(name).sha256, Sha256(info->data, info->num_bytes)) << name;
    EXPECT_EQ(digests->at(name).file, fs::path(info->file).filename().string());
  }
  EXPECT_THAT(ComputeTensorDigests(**checkpoint, {"no.such.tensor"}), StatusIs(absl::StatusCode::kNotFound));
}

TEST(TensorDigestsTest, TheCacheIsUsedWhileEveryShardFileIsUnchanged) {
  auto checkpoint = Checkpoint::Open(testing::GoldenDir());
  ASSERT_THAT(checkpoint, IsOk());
  const std::string state = ::testing::TempDir() + "/digests-state";
  fs::remove_all(state);
  fs::create_directories(state);
  const std::string cache = DigestCachePath(**checkpoint, state);
  EXPECT_THAT(cache, ::testing::StartsWith(state + "/tensor-digests-"));
  bool computed = false;
  auto first = CachedTensorDigests(**checkpoint, cache, &computed);
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(computed);
  auto second = CachedTensorDigests(**checkpoint, cache, &computed);
  ASSERT_THAT(second, IsOk());
  EXPECT_FALSE(computed);
  EXPECT_EQ(second->size(), first->size());
  for (const auto& [name, digest] : *first) EXPECT_EQ(second->at(name).sha256, digest.sha256) << name;

  // A cache that does not describe these files (another size) or does not parse is recomputed.
  std::ifstream in(cache);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t size_at = text.find("\"size\": ");
  ASSERT_NE(size_at, std::string::npos);
  text = text.substr(0, size_at + 8) + "1" + text.substr(size_at + 8);  // another size
  std::ofstream(cache) << text;
  ASSERT_THAT(CachedTensorDigests(**checkpoint, cache, &computed), IsOk());
  EXPECT_TRUE(computed);
  std::ofstream(cache) << "{not json";
  ASSERT_THAT(CachedTensorDigests(**checkpoint, cache, &computed), IsOk());
  EXPECT_TRUE(computed);
  fs::remove_all(state);
}

TEST(TensorDigestsTest, ComparisonNamesTheFirstTensorThatDiffersAndItsFile) {
  const TensorDigests expected = {{"a", {"f1", std::string(32, 'x')}}, {"b", {"f2", std::string(32, 'y')}}};
  EXPECT_THAT(CompareTensorDigests(expected, {{"b", {"f2", std::string(32, 'y')}}}), IsOk());
  EXPECT_THAT(CompareTensorDigests(expected, {{"b", {"mine.safetensors", std::string(32, 'z')}}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("tensor 'b' in its mine.safetensors differs from the coordinator's checkpoint")));
  EXPECT_THAT(CompareTensorDigests(expected, {{"c", {"f3", std::string(32, 'y')}}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("'c' is not in the coordinator's")));
  EXPECT_THAT(CompareTensorDigests(expected, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("reported no tensor digests")));
}

TEST(TensorDigestsTest, TheCheckpointRecordsTheTensorsItHandedOut) {
  auto checkpoint = Checkpoint::Open(testing::GoldenDir());
  ASSERT_THAT(checkpoint, IsOk());
  EXPECT_TRUE((*checkpoint)->TouchedTensors().empty());
  const std::string name = "model.norm.weight";
  const TensorInfo* info = (*checkpoint)->Find(name);
  ASSERT_NE(info, nullptr);
  ASSERT_THAT((*checkpoint)->VectorF32(name, info->shape[0]), IsOk());
  EXPECT_THAT((*checkpoint)->TouchedTensors(), ::testing::ElementsAre(name));
}

}  // namespace
}  // namespace mmx::model
