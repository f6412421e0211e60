#include "model/model_maker.h"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "base/bf16.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/checkpoint.h"
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
using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using Json = nlohmann::json;

const std::string kGoldenDir = testing::GoldenDir();
const std::string kMkmodel = MMX_BINARY_DIR "/bin/mmx-mkmodel";

using ::mmx::testing::ReadFile;

int64_t NumParameters(const ModelConfig& config) {
  int64_t total = 0;
  for (const auto& [name, shape] : ExpectedTensors(config)) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    total += n;
  }
  return total;
}

// Mean and standard deviation of a BF16 tensor of the checkpoint.
std::pair<double, double> Moments(const Checkpoint& ckpt, const std::string& name) {
  std::vector<int64_t> shape;
  for (const auto& [n, s] : ExpectedTensors(ckpt.config())) {
    if (n == name) shape = s;
  }
  absl::StatusOr<TensorInfo> info = ckpt.Get(name, shape);
  EXPECT_THAT(info, IsOk());
  const auto* data = static_cast<const uint16_t*>(info->data);
  const int64_t n = info->num_elements();
  double sum = 0, squares = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = Bf16ToFloat(data[i]);
    sum += v;
    squares += v * v;
  }
  const double mean = sum / n;
  return {mean, std::sqrt(squares / n - mean * mean)};
}

TEST(ModelMakerPresetTest, TinyIsTheGoldenTinyAConfig) {
  absl::StatusOr<ModelConfig> tiny = PresetConfig("tiny");
  ASSERT_THAT(tiny, IsOk());
  EXPECT_EQ(Json::parse(tiny->ToJson()), Json::parse(ReadFile(kGoldenDir + "/config.json")));
}

TEST(ModelMakerPresetTest, MediumIsTheBenchMConfigKeyForKey) {
  absl::StatusOr<ModelConfig> medium = PresetConfig("medium");
  ASSERT_THAT(medium, IsOk());
  const Json preset = Json::parse(medium->ToJson());
  const Json file = Json::parse(ReadFile(MMX_TEST_DATA_DIR "/bench-m.config.json"));
  for (const auto& [key, value] : file.items()) {
    ASSERT_TRUE(preset.contains(key)) << key;
    EXPECT_EQ(preset[key], value) << key;
  }
  EXPECT_EQ(preset.size(), file.size());
  // 3.67B parameters, 7.3 GB of BF16.
  EXPECT_NEAR(NumParameters(*medium) / 1e9, 3.67, 0.01);
}

TEST(ModelMakerPresetTest, SmallIsAboutOneGigabyte) {
  absl::StatusOr<ModelConfig> small = PresetConfig("small");
  ASSERT_THAT(small, IsOk());
  EXPECT_NEAR(2.0 * NumParameters(*small) / 1e9, 1.0, 0.1);
  EXPECT_EQ(small->vocab_size, 32000);
  for (int l = 0; l < small->num_hidden_layers; ++l) EXPECT_EQ(small->is_softmax(l), l % 8 == 7);
  // A preset must pass the same validation as a file.
  EXPECT_THAT(ModelConfig::FromJson(small->ToJson()), IsOk());
}

TEST(ModelMakerPresetTest, UnknownPresetListsTheKnownOnes) {
  EXPECT_THAT(PresetConfig("huge"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown preset 'huge'; known presets: tiny, small, medium")));
}

TEST(ModelMakerInitTest, ScalesFollowTheGoldenRecipe) {
  const float s96 = std::sqrt(96.0f);
  auto stddev = [](const std::string& name, std::vector<int64_t> shape) {
    return InitFor(name, shape).stddev;
  };
  EXPECT_FLOAT_EQ(stddev("model.layers.0.self_attn.qkv_proj.weight", {768, 96}), 0.5f / s96);
  EXPECT_FLOAT_EQ(stddev("model.layers.3.self_attn.q_proj.weight", {256, 96}), 1.2f / s96);
  EXPECT_FLOAT_EQ(stddev("model.layers.3.self_attn.k_proj.weight", {128, 96}), 1.2f / s96);
  EXPECT_FLOAT_EQ(stddev("model.layers.3.self_attn.v_proj.weight", {128, 96}), 1.0f / s96);
  EXPECT_FLOAT_EQ(stddev("model.layers.0.self_attn.out_proj.weight", {96, 256}), 2.0f / 16);
  EXPECT_FLOAT_EQ(stddev("model.layers.3.self_attn.o_proj.weight", {96, 256}), 2.0f / 16);
  EXPECT_FLOAT_EQ(stddev("model.layers.0.self_attn.output_gate.weight", {256, 96}), 1.0f / s96);
  EXPECT_FLOAT_EQ(stddev("model.layers.0.block_sparse_moe.gate.weight", {8, 96}), 2.0f / s96);
  EXPECT_FLOAT_EQ(stddev("model.layers.0.block_sparse_moe.experts.1.w1.weight", {144, 96}),
                  1.0f / s96);
  EXPECT_FLOAT_EQ(stddev("model.layers.0.block_sparse_moe.experts.1.w2.weight", {96, 144}),
                  2.0f / 12);
  EXPECT_FLOAT_EQ(stddev("lm_head.weight", {512, 96}), 3.0f / s96);
  EXPECT_FLOAT_EQ(stddev("model.embed_tokens.weight", {512, 96}), 0.05f);
  const InitSpec norm = InitFor("model.layers.0.input_layernorm.weight", {96});
  EXPECT_EQ(norm.mean, 1.0f);
  EXPECT_EQ(norm.stddev, 0.1f);
}

TEST(ModelMakerInitTest, AnySplitOfATensorGivesTheSameValues) {
  constexpr int64_t kN = 1000;
  std::vector<uint16_t> whole(kN), parts(kN);
  FillTensorBf16(5, "w", {0.0f, 1.0f}, 0, kN, whole.data());
  const int64_t cuts[] = {0, 1, 130, 131, 256, 999, kN};
  for (size_t i = 0; i + 1 < std::size(cuts); ++i) {
    FillTensorBf16(5, "w", {0.0f, 1.0f}, cuts[i], cuts[i + 1] - cuts[i], parts.data() + cuts[i]);
  }
  EXPECT_EQ(whole, parts);
  // The name and the seed both select the stream.
  std::vector<uint16_t> other(kN);
  FillTensorBf16(5, "v", {0.0f, 1.0f}, 0, kN, other.data());
  EXPECT_NE(whole, other);
  FillTensorBf16(6, "w", {0.0f, 1.0f}, 0, kN, other.data());
  EXPECT_NE(whole, other);
}

TEST(ModelMakerInitTest, SamplesAreStandardNormal) {
  constexpr int64_t kN = 1 << 20;
  std::vector<uint16_t> values(kN);
  FillTensorBf16(1, "w", {0.0f, 1.0f}, 0, kN, values.data());
  double sum = 0, squares = 0, fourth = 0, beyond_3 = 0;
  for (uint16_t v : values) {
    const double x = Bf16ToFloat(v);
    sum += x;
    squares += x * x;
    fourth += x * x * x * x;
    beyond_3 += std::fabs(x) > 3;
  }
  EXPECT_NEAR(sum / kN, 0.0, 0.005);
  EXPECT_NEAR(squares / kN, 1.0, 0.01);
  EXPECT_NEAR(fourth / kN, 3.0, 0.05);          // kurtosis of a normal
  EXPECT_NEAR(beyond_3 / kN, 0.0027, 0.0005);   // two-sided tail beyond 3 sigma
}

class ModelMakerTest : public ::testing::Test {
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

  absl::StatusOr<MadeModel> MakeTiny(const std::string& sub, uint64_t seed, int threads = 2,
                                     uint64_t shard_size = 0) {
    absl::StatusOr<ModelConfig> tiny = PresetConfig("tiny");
    EXPECT_THAT(tiny, IsOk());
    MakeModelOptions options;
    options.seed = seed;
    options.num_threads = threads;
    options.shard_size_bytes = shard_size;
    return MakeModel(*tiny, Path(sub), options);
  }
  std::string Path(const std::string& sub) const { return dir_ + "/" + sub; }

  // Every file of a written checkpoint, name -> bytes.
  std::map<std::string, std::string> Files(const std::string& sub) const {
    std::map<std::string, std::string> files;
    for (const auto& entry : fs::directory_iterator(Path(sub))) {
      files[entry.path().filename().string()] = ReadFile(entry.path().string());
    }
    return files;
  }

  std::string dir_;
};

TEST_F(ModelMakerTest, TinyCheckpointOpensAndValidatesWithTwoShards) {
  absl::StatusOr<MadeModel> made = MakeTiny("m", 7);
  ASSERT_THAT(made, IsOk());
  EXPECT_EQ(made->num_shards, 2);
  EXPECT_EQ(made->num_tensors, 251);
  EXPECT_EQ(made->total_bytes, 7293120u);  // the golden index's total_size: same shapes

  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(Path("m"));
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(), IsOk());

  std::map<std::string, std::string> files = Files("m");
  EXPECT_EQ(files.size(), 5u);  // no .partial left behind
  EXPECT_TRUE(files.count("tokenizer.json"));
  EXPECT_TRUE(files.count("model-00001-of-00002.safetensors"));
  EXPECT_TRUE(files.count("model-00002-of-00002.safetensors"));
  const Json index = Json::parse(files["model.safetensors.index.json"]);
  EXPECT_EQ(index["metadata"]["total_size"], 7293120);
  EXPECT_EQ(index["weight_map"].size(), 251u);
  EXPECT_EQ(index["weight_map"]["model.embed_tokens.weight"], "model-00001-of-00002.safetensors");
  EXPECT_EQ(index["weight_map"]["lm_head.weight"], "model-00002-of-00002.safetensors");
  EXPECT_EQ(Json::parse(files["config.json"]), Json::parse(ReadFile(kGoldenDir + "/config.json")));
}

TEST_F(ModelMakerTest, WeightsHaveTheIntendedScale) {
  ASSERT_THAT(MakeTiny("m", 3), IsOk());
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(Path("m"));
  ASSERT_THAT(ckpt, IsOk());
  auto [lm_mean, lm_std] = Moments(**ckpt, "lm_head.weight");
  EXPECT_NEAR(lm_mean, 0.0, 0.01);
  EXPECT_NEAR(lm_std, 3.0 / std::sqrt(96.0), 0.01);
  auto [emb_mean, emb_std] = Moments(**ckpt, "model.embed_tokens.weight");
  EXPECT_NEAR(emb_std, 0.05, 0.002);
  auto [norm_mean, norm_std] = Moments(**ckpt, "model.layers.0.self_attn.norm.weight");
  EXPECT_NEAR(norm_mean, 1.0, 0.03);
  EXPECT_NEAR(norm_std, 0.1, 0.02);
}

TEST_F(ModelMakerTest, SameSeedGivesIdenticalBytesWhateverTheThreadCount) {
  ASSERT_THAT(MakeTiny("a", 11, /*threads=*/1), IsOk());
  ASSERT_THAT(MakeTiny("b", 11, /*threads=*/3), IsOk());
  EXPECT_TRUE(Files("a") == Files("b"));
}

TEST_F(ModelMakerTest, DifferentSeedGivesDifferentWeights) {
  ASSERT_THAT(MakeTiny("a", 11), IsOk());
  ASSERT_THAT(MakeTiny("b", 12), IsOk());
  std::map<std::string, std::string> a = Files("a"), b = Files("b");
  EXPECT_EQ(a["config.json"], b["config.json"]);
  EXPECT_EQ(a["model.safetensors.index.json"], b["model.safetensors.index.json"]);
  EXPECT_NE(a["model-00001-of-00002.safetensors"], b["model-00001-of-00002.safetensors"]);
  EXPECT_NE(a["model-00002-of-00002.safetensors"], b["model-00002-of-00002.safetensors"]);
}

TEST_F(ModelMakerTest, ShardSizeOptionCutsSmallerShards) {
  absl::StatusOr<MadeModel> made = MakeTiny("m", 1, 2, /*shard_size=*/1 << 20);
  ASSERT_THAT(made, IsOk());
  // 7,293,120 bytes in shards of at most 1 MiB; whole tensors leave some room in each.
  const std::vector<std::vector<TensorSpec>> plan = PlanShards(*PresetConfig("tiny"), 1 << 20);
  EXPECT_GE(made->num_shards, 7);
  ASSERT_EQ(made->num_shards, static_cast<int>(plan.size()));
  for (int s = 0; s < made->num_shards; ++s) {
    uint64_t data = 0;
    for (const TensorSpec& spec : plan[s]) data += spec.num_bytes();
    EXPECT_LE(data, 1u << 20) << s;
    EXPECT_TRUE(fs::exists(Path("m/" + ShardFileName(s, made->num_shards)))) << s;
  }
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(Path("m"));
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(), IsOk());
}

TEST_F(ModelMakerTest, ReportsProgressPerShard) {
  absl::StatusOr<ModelConfig> tiny = PresetConfig("tiny");
  ASSERT_THAT(tiny, IsOk());
  std::vector<std::string> lines;
  MakeModelOptions options;
  options.progress = [&](const std::string& line) { lines.push_back(line); };
  ASSERT_THAT(MakeModel(*tiny, Path("m"), options), IsOk());
  EXPECT_THAT(lines, Contains("writing model-00001-of-00002.safetensors (3.5 MiB) 0%"));
  EXPECT_THAT(lines, Contains("writing model-00002-of-00002.safetensors (3.4 MiB) 100%"));
}

TEST_F(ModelMakerTest, RefusesAnOutputDirectoryThatCannotBeCreated) {
  std::ofstream(Path("file")) << "x";
  absl::StatusOr<ModelConfig> tiny = PresetConfig("tiny");
  ASSERT_THAT(tiny, IsOk());
  EXPECT_THAT(MakeModel(*tiny, Path("file/sub"), MakeModelOptions{}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("cannot create output directory")));
}

// ---- the mmx-mkmodel executable ----

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr
};

RunResult RunMkmodel(const std::string& args) {
  const ::mmx::testing::ProcessResult p = ::mmx::testing::RunShell(kMkmodel + " " + args + " 2>&1", absl::Seconds(300));
  RunResult result;
  result.exit_code = p.exit_code;
  result.output = p.out;
  return result;
}

int CountLines(const std::string& text) {
  return static_cast<int>(std::count(text.begin(), text.end(), '\n'));
}

TEST_F(ModelMakerTest, CliWritesACheckpointFromAConfigFile) {
  const RunResult run =
      RunMkmodel("--config " + kGoldenDir + "/config.json --out " + Path("m") + " --seed 3");
  ASSERT_EQ(run.exit_code, 0) << run.output;
  EXPECT_THAT(run.output, HasSubstr("wrote " + Path("m") + ": 2 shards, 251 tensors"));
  absl::StatusOr<std::unique_ptr<Checkpoint>> ckpt = Checkpoint::Open(Path("m"));
  ASSERT_THAT(ckpt, IsOk());
  EXPECT_THAT((*ckpt)->ValidateAgainstConfig(), IsOk());
  // The executable and the library agree byte for byte.
  ASSERT_THAT(MakeTiny("lib", 3), IsOk());
  EXPECT_TRUE(Files("m") == Files("lib"));
}

TEST_F(ModelMakerTest, CliRefusesPresetAndConfigTogether) {
  const RunResult run = RunMkmodel("--preset tiny --config x.json --out " + Path("m"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_THAT(run.output, AllOf(StartsWith("mmx-mkmodel: "), HasSubstr("excludes")));
}

TEST_F(ModelMakerTest, CliRefusesNeitherPresetNorConfig) {
  const RunResult run = RunMkmodel("--out " + Path("m"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.output, "mmx-mkmodel: give exactly one of --preset NAME or --config PATH\n");
}

TEST_F(ModelMakerTest, CliRefusesMissingOut) {
  const RunResult run = RunMkmodel("--preset tiny");
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("--out"));
}

TEST_F(ModelMakerTest, CliRefusesUnknownPresetListingTheKnownOnes) {
  const RunResult run = RunMkmodel("--preset huge --out " + Path("m"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(run.output,
            "mmx-mkmodel: unknown preset 'huge'; known presets: tiny, small, medium\n");
  EXPECT_FALSE(fs::exists(Path("m")));
}

TEST_F(ModelMakerTest, CliRefusesAnUnwritableOutputDirectory) {
  std::ofstream(Path("file")) << "x";
  const RunResult run = RunMkmodel("--preset tiny --out " + Path("file/sub"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("cannot create output directory " + Path("file/sub")));
}

TEST_F(ModelMakerTest, CliRefusesAnInvalidConfigFile) {
  std::ofstream(Path("config.json")) << "{\"architectures\": [\"LlamaForCausalLM\"]}";
  const RunResult run = RunMkmodel("--config " + Path("config.json") + " --out " + Path("m"));
  EXPECT_NE(run.exit_code, 0);
  EXPECT_EQ(CountLines(run.output), 1) << run.output;
  EXPECT_THAT(run.output, HasSubstr("'architectures' is [LlamaForCausalLM]"));
}

}  // namespace
}  // namespace mmx::model
