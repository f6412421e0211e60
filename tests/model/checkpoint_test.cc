#include "model/checkpoint.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "base/bf16.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"
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

const std::string kGoldenDir = testing::GoldenDir();
constexpr const char* kShard1 = "model-00001-of-00002.safetensors";
constexpr const char* kShard2 = "model-00002-of-00002.safetensors";
constexpr const char* kIndex = "model.safetensors.index.json";

using ::mmx::testing::ReadFile;

void WriteFile(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

void EditJsonFile(const std::string& path, const std::function<void(Json&)>& edit) {
  Json j = Json::parse(ReadFile(path));
  edit(j);
  WriteFile(path, j.dump(2));
}

// Splits a safetensors file into its header JSON and its data section.
std::pair<Json, std::string> SplitSafetensors(const std::string& path) {
  const std::string bytes = ReadFile(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  return {Json::parse(bytes.substr(8, n)), bytes.substr(8 + n)};
}

// Rewrites a shard's header (the data section stays as it is).
void EditHeader(const std::string& path, const std::function<void(Json&)>& edit) {
  auto [header, data] = SplitSafetensors(path);
  edit(header);
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');
  std::string length(8, '\0');
  for (int i = 0; i < 8; ++i) length[i] = static_cast<char>(uint64_t{text.size()} >> (8 * i));
  WriteFile(path, length + text + data);
}

// The bytes of one tensor read by hand from the golden shards, without mmx code.
std::vector<uint8_t> GoldenTensorBytes(const std::string& name) {
  const Json index = Json::parse(ReadFile(kGoldenDir + "/" + kIndex));
  auto [header, data] =
      SplitSafetensors(kGoldenDir + "/" + index["weight_map"][name].get<std::string>());
  const uint64_t begin = header[name]["data_offsets"][0], end = header[name]["data_offsets"][1];
  return std::vector<uint8_t>(data.begin() + begin, data.begin() + end);
}

class CheckpointTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = (fs::path(::testing::TempDir()) /
            (std::string("mmx_") + info->test_suite_name() + "_" + info->name() + "_" +
             std::to_string(::getpid())))
               .string();
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // A copy of tiny-a (checkpoint files only) to damage.
  void CopyGolden() {
    for (const char* name : {"config.json", kIndex, kShard1, kShard2}) {
      fs::copy_file(kGoldenDir + "/" + name, Path(name));
    }
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  std::string dir_;
};

TEST_F(CheckpointTest, OpensAndValidatesGoldenTinyA) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(kGoldenDir);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_EQ((*ckpt)->dir(), kGoldenDir);
  EXPECT_EQ((*ckpt)->config().hidden_size, 96);
  EXPECT_EQ((*ckpt)->TensorNames().size(), 251u);
  EXPECT_TRUE((*ckpt)->Has("model.layers.4.self_attn.out_proj.weight"));
  EXPECT_FALSE((*ckpt)->Has("model.layers.3.self_attn.out_proj.weight"));  // a softmax layer
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(), IsOk());
}

TEST_F(CheckpointTest, ExpectedTensorsAreExactlyTheGoldenTensors) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(kGoldenDir);
  ASSERT_THAT(ckpt, IsOk());
  std::vector<std::string> expected;
  for (const auto& [name, shape] : ExpectedTensors((*ckpt)->config())) expected.push_back(name);
  EXPECT_EQ(expected.front(), "model.embed_tokens.weight");
  EXPECT_EQ(expected.back(), "lm_head.weight");
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(expected, (*ckpt)->TensorNames());
}

TEST_F(CheckpointTest, ExpectedTensorsOfTheReleasedModelMatchModelMdCounts) {
  Json j = Json::parse(ReadFile(kGoldenDir + "/config.json"));
  j["vocab_size"] = 200064;
  j["hidden_size"] = 6144;
  j["intermediate_size"] = 9216;
  j["num_hidden_layers"] = 80;
  j["num_attention_heads"] = 64;
  j["head_dim"] = 128;
  j["num_key_value_heads"] = 8;
  j["rotary_dim"] = 64;
  j["num_local_experts"] = 32;
  j["attn_type_list"] = Json::array();
  for (int l = 0; l < 80; ++l) j["attn_type_list"].push_back((l + 1) % 8 == 0 ? 1 : 0);
  absl::StatusOr<ModelConfig> config = ModelConfig::FromJson(j.dump());
  ASSERT_THAT(config, IsOk());
  const auto tensors = ExpectedTensors(*config);
  EXPECT_EQ(tensors.size(), 8243u);  // MODEL.md §6
  int64_t params = 0;
  for (const auto& [name, shape] : tensors) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    params += n;
  }
  EXPECT_EQ(params, 456'089'655'296);  // MODEL.md §7
}

TEST_F(CheckpointTest, VectorF32MatchesTheBytesReadByHand) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(kGoldenDir);
  ASSERT_THAT(ckpt, IsOk());
  absl::StatusOr<std::vector<float>> norm = (*ckpt)->VectorF32("model.norm.weight", 96);
  ASSERT_THAT(norm, IsOk());
  const std::vector<uint8_t> bytes = GoldenTensorBytes("model.norm.weight");
  ASSERT_EQ(bytes.size(), 96u * 2);
  for (int i = 0; i < 96; ++i) {
    const uint16_t bits = static_cast<uint16_t>(bytes[2 * i] | (bytes[2 * i + 1] << 8));
    EXPECT_EQ((*norm)[i], Bf16ToFloat(bits)) << i;
  }
  // Norm weights are 1 + 0.1*N(0,1) (README): a sanity check that these are the right bytes.
  EXPECT_NEAR((*norm)[0], 1.0f, 0.5f);
}

TEST_F(CheckpointTest, MatrixIsAViewIntoTheShard) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(kGoldenDir);
  ASSERT_THAT(ckpt, IsOk());
  absl::StatusOr<kernels::WeightView> w =
      (*ckpt)->Matrix("model.layers.0.block_sparse_moe.gate.weight", 8, 96);
  ASSERT_THAT(w, IsOk());
  EXPECT_EQ(w->dtype, DType::kBF16);
  EXPECT_EQ(w->rows, 8);
  EXPECT_EQ(w->cols, 96);
  const std::vector<uint8_t> bytes = GoldenTensorBytes("model.layers.0.block_sparse_moe.gate.weight");
  EXPECT_EQ(std::memcmp(w->data, bytes.data(), bytes.size()), 0);
}

TEST_F(CheckpointTest, GetNamesTheFileAndBothShapesOnMismatch) {
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(kGoldenDir);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->Matrix("model.layers.0.block_sparse_moe.gate.weight", 8, 95),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model-00001-of-00002.safetensors: tensor "
                                 "'model.layers.0.block_sparse_moe.gate.weight' has shape "
                                 "[8, 96], config.json expects [8, 95]")));
  EXPECT_THAT((*ckpt)->VectorF32("model.layers.99.input_layernorm.weight", 96),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("no tensor 'model.layers.99.input_layernorm.weight'")));
}

TEST_F(CheckpointTest, OpensASingleFileCheckpointWithoutIndex) {
  // Merge both golden shards into one model.safetensors.
  std::vector<TensorToWrite> tensors;
  for (const char* shard : {kShard1, kShard2}) {
    auto [header, data] = SplitSafetensors(kGoldenDir + "/" + shard);
    for (const auto& [name, entry] : header.items()) {
      if (name == "__metadata__") continue;
      const uint64_t begin = entry["data_offsets"][0], end = entry["data_offsets"][1];
      tensors.push_back({name, DType::kBF16, entry["shape"].get<std::vector<int64_t>>(),
                         std::vector<uint8_t>(data.begin() + begin, data.begin() + end)});
    }
  }
  fs::copy_file(kGoldenDir + "/config.json", Path("config.json"));
  ASSERT_THAT(WriteSafetensors(Path("model.safetensors"), tensors), IsOk());
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir_);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_EQ((*ckpt)->TensorNames().size(), 251u);
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(), IsOk());

  // Any single *.safetensors name works too; two of them need an index.
  fs::rename(Path("model.safetensors"), Path("weights.safetensors"));
  EXPECT_THAT(Checkpoint::Open(dir_), IsOk());
  fs::copy_file(Path("weights.safetensors"), Path("other.safetensors"));
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kNotFound,
                       HasSubstr("no model.safetensors.index.json to say which of the 2")));
}

TEST_F(CheckpointTest, RefusesMissingDirectoryConfigAndWeights) {
  EXPECT_THAT(Checkpoint::Open(Path("nope")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no such checkpoint directory")));
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("config.json: no such file")));
  fs::copy_file(kGoldenDir + "/config.json", Path("config.json"));
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("no .safetensors file")));
}

TEST_F(CheckpointTest, RefusesMissingShardNamingItAndATensor) {
  CopyGolden();
  fs::remove(Path(kShard2));
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("model-00002-of-00002.safetensors: shard is missing"),
                             HasSubstr("'lm_head.weight'"))));
}

TEST_F(CheckpointTest, RefusesTruncatedShard) {
  CopyGolden();
  fs::resize_file(Path(kShard1), fs::file_size(Path(kShard1)) - 1000);
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("model-00001-of-00002.safetensors: tensor '"),
                             HasSubstr("end past the end of the data section"))));
}

TEST_F(CheckpointTest, RefusesHeaderLengthPastTheEndOfTheFile) {
  CopyGolden();
  std::string bytes = ReadFile(Path(kShard2));
  bytes.resize(5000);  // the header is 14680 bytes
  WriteFile(Path(kShard2), bytes);
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("model-00002-of-00002.safetensors: header length 14680 runs past "
                                 "the end of the file (5000 bytes)")));
}

TEST_F(CheckpointTest, RefusesMalformedHeaderJson) {
  CopyGolden();
  std::string bytes = ReadFile(Path(kShard1));
  bytes[8] = 'x';  // the header's opening brace
  WriteFile(Path(kShard1), bytes);
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("model-00001-of-00002.safetensors: header is not valid JSON")));
}

TEST_F(CheckpointTest, RefusesDataOffsetPastTheEndOfTheDataSection) {
  CopyGolden();
  EditHeader(Path(kShard2), [](Json& h) {
    h["model.layers.4.self_attn.norm.weight"]["data_offsets"] = {3600000, 3600512};
  });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("model-00002-of-00002.safetensors: tensor "
                                 "'model.layers.4.self_attn.norm.weight' data_offsets [3600000, "
                                 "3600512] end past the end of the data section")));
}

TEST_F(CheckpointTest, RefusesOverlappingOffsets) {
  CopyGolden();
  EditHeader(Path(kShard2), [](Json& h) {
    // The right span (192 bytes) in the wrong place: inside lm_head's [0, 98304].
    h["model.norm.weight"]["data_offsets"] = {100, 292};
  });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("'model.norm.weight' data_offsets [100, 292] overlap"),
                             HasSubstr("'lm_head.weight'"))));
}

TEST_F(CheckpointTest, RefusesUnknownDtype) {
  CopyGolden();
  EditHeader(Path(kShard1), [](Json& h) { h["model.embed_tokens.weight"]["dtype"] = "BF17"; });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("tensor 'model.embed_tokens.weight' has unknown dtype 'BF17'")));
}

TEST_F(CheckpointTest, RefusesShapeThatContradictsConfig) {
  CopyGolden();
  // Same number of elements, so the header itself is consistent: only config.json disagrees.
  EditHeader(Path(kShard1), [](Json& h) {
    h["model.layers.0.block_sparse_moe.gate.weight"]["shape"] = {4, 192};
  });
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir_);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("model-00001-of-00002.safetensors: tensor "
                                 "'model.layers.0.block_sparse_moe.gate.weight' has shape "
                                 "[4, 192], config.json expects [8, 96]")));
}

TEST_F(CheckpointTest, RefusesTensorMissingFromTheShardTheIndexNames) {
  CopyGolden();
  EditHeader(Path(kShard2), [](Json& h) { h.erase("model.norm.weight"); });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("model-00002-of-00002.safetensors: has no tensor "
                                       "'model.norm.weight'"),
                             HasSubstr("model.safetensors.index.json maps it to this shard"))));
}

TEST_F(CheckpointTest, RefusesShardTensorTheIndexDoesNotList) {
  CopyGolden();
  EditJsonFile(Path(kIndex), [](Json& j) { j["weight_map"].erase("model.norm.weight"); });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       AllOf(HasSubstr("holds tensor 'model.norm.weight'"),
                             HasSubstr("does not list it"))));
}

TEST_F(CheckpointTest, RefusesIndexThatPointsOutsideTheDirectory) {
  CopyGolden();
  EditJsonFile(Path(kIndex), [](Json& j) {
    j["weight_map"]["model.norm.weight"] = "../model-00002-of-00002.safetensors";
  });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("not a file name in this directory")));
}

TEST_F(CheckpointTest, RefusesMalformedIndex) {
  CopyGolden();
  WriteFile(Path(kIndex), "{\"weight_map\": {");
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss,
                       HasSubstr("model.safetensors.index.json: malformed JSON")));
  WriteFile(Path(kIndex), "{\"metadata\": {\"total_size\": 1E400}, \"weight_map\": {}}");
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("model.safetensors.index.json: malformed JSON")));
  WriteFile(Path(kIndex), "{\"metadata\": {}}");
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kDataLoss, HasSubstr("no \"weight_map\" object")));
}

TEST_F(CheckpointTest, ValidateReportsMissingTensorAndCountsTheRest) {
  CopyGolden();
  EditHeader(Path(kShard2), [](Json& h) {
    h.erase("model.norm.weight");
    h.erase("lm_head.weight");
  });
  EditJsonFile(Path(kIndex), [](Json& j) {
    j["weight_map"].erase("model.norm.weight");
    j["weight_map"].erase("lm_head.weight");
  });
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir_);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("tensor 'model.norm.weight' [96] is missing"),
                             HasSubstr("(and 1 more problems)"))));
}

TEST_F(CheckpointTest, ValidateRefusesUnknownTensorsButIgnoresRotaryInvFreq) {
  CopyGolden();
  auto add_empty = [&](const std::string& name) {
    EditHeader(Path(kShard2), [&](Json& h) {
      h[name] = {{"dtype", "F32"}, {"shape", {0}}, {"data_offsets", {0, 0}}};
    });
    EditJsonFile(Path(kIndex), [&](Json& j) { j["weight_map"][name] = kShard2; });
  };
  add_empty("model.layers.3.self_attn.rotary_emb.inv_freq");
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir_);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(), IsOk());

  add_empty("model.layers.0.block_sparse_moe.shared_mlp.gate_proj.weight");
  ckpt = Checkpoint::Open(dir_);
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("tensor 'model.layers.0.block_sparse_moe.shared_mlp.gate_proj."
                                 "weight' is not one config.json implies")));
}

TEST_F(CheckpointTest, RefusesConfigWithSharedExpert) {
  CopyGolden();
  EditJsonFile(Path("config.json"), [](Json& j) { j["shared_intermediate_size"] = 1; });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("config.json: 'shared_intermediate_size' is 1"))));
}

TEST_F(CheckpointTest, RefusesUnknownArchitecture) {
  CopyGolden();
  EditJsonFile(Path("config.json"), [](Json& j) { j["architectures"] = {"LlamaForCausalLM"}; });
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("'architectures' is [LlamaForCausalLM]"),
                             HasSubstr("MiniMaxText01ForCausalLM"))));
}

TEST_F(CheckpointTest, RefusesMalformedConfigJson) {
  CopyGolden();
  WriteFile(Path("config.json"), "{\n  \"hidden_size\": 96\n  \"vocab_size\": 512\n}\n");
  EXPECT_THAT(Checkpoint::Open(dir_),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("config.json: malformed JSON"), HasSubstr("line 3"))));
}

// Open reads headers only: after dropping the shard from the page cache, opening it must not
// bring the tensor data back. Skipped where the cache cannot be dropped (tmpfs).
TEST_F(CheckpointTest, OpenDoesNotReadTensorData) {
  constexpr int64_t kRows = 2048, kCols = 1024;  // 4 MiB of BF16
  fs::copy_file(kGoldenDir + "/config.json", Path("config.json"));
  std::vector<TensorToWrite> tensors;
  tensors.push_back({"big", DType::kBF16, {kRows, kCols},
                     std::vector<uint8_t>(static_cast<size_t>(kRows * kCols * 2), 1)});
  ASSERT_THAT(WriteSafetensors(Path("model.safetensors"), tensors), IsOk());
  const int fd = ::open(Path("model.safetensors").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  ::fsync(fd);
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);

  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(dir_);
  ASSERT_THAT(ckpt, IsOk());
  absl::StatusOr<TensorInfo> big = (*ckpt)->Get("big", {kRows, kCols});
  ASSERT_THAT(big, IsOk());
  // Look at the last MiB of the tensor: far from the header, beyond any readahead of it.
  const long page = ::sysconf(_SC_PAGESIZE);
  const auto tail = reinterpret_cast<uintptr_t>(big->data) + big->num_bytes - (1 << 20);
  const uintptr_t start = (tail + page - 1) / page * page;
  const size_t num_pages = (1 << 20) / page - 1;
  std::vector<unsigned char> resident(num_pages);
  ASSERT_EQ(::mincore(reinterpret_cast<void*>(start), num_pages * page, resident.data()), 0);
  size_t num_resident = 0;
  for (unsigned char r : resident) num_resident += r & 1;
  if (num_resident == num_pages) GTEST_SKIP() << "page cache could not be dropped here";
  EXPECT_EQ(num_resident, 0u);
}

}  // namespace
}  // namespace mmx::model
