// The engine against the official implementation's outputs on the golden tiny-a checkpoint
// (tests/data/golden/tiny-a, see its README): prefill logits, cached decode (free-running and
// teacher-forced), the batched case, per-layer hidden states, slopes, and chunked prefill.
// Tolerance: 5e-4 absolute on every logit, the README's figure for fp32 activations.
#include <cmath>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "model/generate_local.h"
#include "model/layers.h"
#include "model/model_runner.h"
#include "model/weights.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden_reader.h"

namespace mmx::model {
namespace {

constexpr float kTolerance = 5e-4f;
const std::string kDir = std::string(MMX_TEST_DATA_DIR) + "/golden/tiny-a";

class GoldenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto runner = ModelRunner::Load(kDir);
    ASSERT_TRUE(runner.ok()) << runner.status();
    runner_ = runner->release();
    std::ifstream in(kDir + "/golden/prompts.json");
    prompts_json_ = new nlohmann::json(nlohmann::json::parse(in));
  }
  static void TearDownTestSuite() {
    delete runner_;
    delete prompts_json_;
  }

  static std::vector<int32_t> Prompt(const std::string& name) {
    return (*prompts_json_)["prompts"][name].get<std::vector<int32_t>>();
  }

  // Logits of every position of `prompt`, fed in chunks of `chunk` tokens.
  static std::vector<float> PrefillLogits(const std::vector<int32_t>& prompt, size_t chunk) {
    EXPECT_TRUE(runner_->StartSequence(1).ok());
    std::vector<float> all;
    for (size_t i = 0; i < prompt.size(); i += chunk) {
      StepInput in;
      in.sequence_id = 1;
      in.tokens.assign(prompt.begin() + i, prompt.begin() + std::min(prompt.size(), i + chunk));
      in.all_logits = true;
      auto out = runner_->Step({in});
      EXPECT_TRUE(out.ok()) << out.status();
      all.insert(all.end(), out->logits[0].begin(), out->logits[0].end());
    }
    runner_->EndSequence(1);
    return all;
  }

  static ModelRunner* runner_;
  static nlohmann::json* prompts_json_;
};
ModelRunner* GoldenTest::runner_ = nullptr;
nlohmann::json* GoldenTest::prompts_json_ = nullptr;

// Max |a - b| over the first n values.
float MaxAbsDiff(const float* a, const float* b, size_t n) {
  float worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

TEST_F(GoldenTest, SlopesMatchTheOfficialPerLayerSlopes) {
  std::ifstream in(kDir + "/golden/summary.json");
  auto slopes = nlohmann::json::parse(in)["layer_slopes"];
  const ModelConfig& c = runner_->config();
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    std::vector<float> ours = LightningSlopes(c, l);
    for (int h = 0; h < c.num_attention_heads; ++h) {
      EXPECT_FLOAT_EQ(ours[h], slopes[l][h].get<float>()) << "layer " << l << " head " << h;
    }
  }
}

TEST_F(GoldenTest, PrefillLogitsMatchAtEveryPosition) {
  auto golden = testing::ReadGolden(kDir + "/golden/prefill_logits.safetensors");
  for (const std::string name : {"p1", "p5", "p64", "p300"}) {
    std::vector<float> ours = PrefillLogits(Prompt(name), 256);
    const auto& want = golden.at(name).f32;
    ASSERT_EQ(ours.size(), want.size()) << name;
    EXPECT_LE(MaxAbsDiff(ours.data(), want.data(), want.size()), kTolerance) << name;
  }
}

TEST_F(GoldenTest, LongPromptLast64LogitsMatch) {
  auto golden = testing::ReadGolden(kDir + "/golden/prefill_logits.safetensors");
  std::vector<float> ours = PrefillLogits(Prompt("p700"), 256);
  const auto& want = golden.at("p700.last64").f32;
  ASSERT_GE(ours.size(), want.size());
  EXPECT_LE(MaxAbsDiff(ours.data() + ours.size() - want.size(), want.data(), want.size()), kTolerance);
}

TEST_F(GoldenTest, ChunkedPrefillEqualsTokenByTokenAndGolden) {
  auto golden = testing::ReadGolden(kDir + "/golden/prefill_logits.safetensors");
  const std::vector<int32_t> prompt = Prompt("p300");
  const std::vector<float> token_by_token = PrefillLogits(prompt, 1);
  const auto& want = golden.at("p300").f32;
  EXPECT_LE(MaxAbsDiff(token_by_token.data(), want.data(), want.size()), kTolerance);
  for (size_t chunk : {7, 64, 256}) {
    std::vector<float> ours = PrefillLogits(prompt, chunk);
    ASSERT_EQ(ours.size(), token_by_token.size());
    EXPECT_LE(MaxAbsDiff(ours.data(), token_by_token.data(), ours.size()), 1e-4f) << chunk;
    EXPECT_LE(MaxAbsDiff(ours.data(), want.data(), want.size()), kTolerance) << chunk;
  }
}

TEST_F(GoldenTest, GreedyGenerationReproducesIdsAndDecodeLogits) {
  auto golden = testing::ReadGolden(kDir + "/golden/decode.safetensors");
  const int64_t V = runner_->config().vocab_size;
  for (const std::string name : {"p1", "p5", "p64", "p300", "p700"}) {
    const std::vector<int32_t> prompt = Prompt(name);
    GenerateOptions options;
    options.max_tokens = 16;
    options.keep_logits = true;
    auto results = Generate(*runner_, {prompt}, options);
    ASSERT_TRUE(results.ok()) << results.status();
    const GenerateResult& r = (*results)[0];
    const auto& ids = golden.at(name + ".generated_ids").i64;
    ASSERT_EQ(r.output_ids.size(), ids.size()) << name;
    for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(r.output_ids[i], ids[i]) << name << " token " << i;
    EXPECT_EQ(r.finish_reason, "length");
    // Rows P.. are decode steps 0..14; the golden's 16th row follows the last generated token.
    const auto& want = golden.at(name + ".decode_logits").f32;
    const size_t P = prompt.size();
    ASSERT_EQ(r.logits.size(), (P + 15) * V);
    EXPECT_LE(MaxAbsDiff(r.logits.data() + P * V, want.data(), 15 * V), kTolerance) << name;
  }
}

TEST_F(GoldenTest, TeacherForcedDecodeLogitsMatch) {
  auto golden = testing::ReadGolden(kDir + "/golden/decode.safetensors");
  const int64_t V = runner_->config().vocab_size;
  for (const std::string name : {"p1", "p5", "p64", "p300", "p700"}) {
    const std::vector<int32_t> prompt = Prompt(name);
    const auto& ids = golden.at(name + ".generated_ids").i64;
    const auto& want = golden.at(name + ".decode_logits").f32;
    ASSERT_TRUE(runner_->StartSequence(7).ok());
    ASSERT_TRUE(runner_->Step({StepInput{7, prompt, false}}).ok());
    for (size_t i = 0; i < ids.size(); ++i) {
      auto out = runner_->Step({StepInput{7, {static_cast<int32_t>(ids[i])}, false}});
      ASSERT_TRUE(out.ok()) << out.status();
      EXPECT_LE(MaxAbsDiff(out->logits[0].data(), want.data() + i * V, V), kTolerance)
          << name << " step " << i;
    }
    runner_->EndSequence(7);
  }
}

TEST_F(GoldenTest, BatchedPrefillAndDecodeMatch) {
  auto golden = testing::ReadGolden(kDir + "/golden/batched.safetensors");
  const int64_t V = runner_->config().vocab_size;
  const auto& input_ids = golden.at("input_ids").i64;  // [2, 300]
  std::vector<std::vector<int32_t>> prompts(2);
  for (int r = 0; r < 2; ++r) prompts[r].assign(input_ids.begin() + r * 300, input_ids.begin() + (r + 1) * 300);
  ASSERT_EQ(prompts[0], Prompt("p300"));

  // Both rows packed into the same steps (no padding), all prefill logits kept.
  GenerateOptions options;
  options.max_tokens = 16;
  options.keep_logits = true;
  auto results = Generate(*runner_, prompts, options);
  ASSERT_TRUE(results.ok()) << results.status();
  const auto& last64 = golden.at("prefill_logits.last64").f32;      // [2, 64, V]
  const auto& gen = golden.at("generated_ids").i64;                  // [2, 16]
  const auto& decode = golden.at("decode_logits").f32;               // [2, 16, V]
  for (int r = 0; r < 2; ++r) {
    const GenerateResult& res = (*results)[r];
    EXPECT_LE(MaxAbsDiff(res.logits.data() + 236 * V, last64.data() + r * 64 * V, 64 * V), kTolerance)
        << "row " << r;
    for (int i = 0; i < 16; ++i) EXPECT_EQ(res.output_ids[i], gen[r * 16 + i]) << "row " << r << " token " << i;
    EXPECT_LE(MaxAbsDiff(res.logits.data() + 300 * V, decode.data() + r * 16 * V, 15 * V), kTolerance)
        << "row " << r;
  }
}

TEST_F(GoldenTest, MixedLengthBatchMatchesEachPromptAlone) {
  // Sequences of different lengths packed into the same steps, without padding, must give what
  // each gives alone (the official code cannot do this; its padded batches are wrong).
  auto golden = testing::ReadGolden(kDir + "/golden/decode.safetensors");
  const int64_t V = runner_->config().vocab_size;
  const std::vector<std::string> names = {"p64", "p1", "p300", "p5"};
  std::vector<std::vector<int32_t>> prompts;
  for (const auto& name : names) prompts.push_back(Prompt(name));
  GenerateOptions options;
  options.max_tokens = 16;
  options.prefill_chunk = 50;  // prompts finish prefill at different steps
  options.keep_logits = true;
  auto results = Generate(*runner_, prompts, options);
  ASSERT_TRUE(results.ok()) << results.status();
  for (size_t i = 0; i < names.size(); ++i) {
    const GenerateResult& r = (*results)[i];
    const auto& ids = golden.at(names[i] + ".generated_ids").i64;
    ASSERT_EQ(r.output_ids.size(), ids.size());
    for (size_t t = 0; t < ids.size(); ++t) EXPECT_EQ(r.output_ids[t], ids[t]) << names[i];
    const auto& want = golden.at(names[i] + ".decode_logits").f32;
    EXPECT_LE(MaxAbsDiff(r.logits.data() + prompts[i].size() * V, want.data(), 15 * V), kTolerance)
        << names[i];
  }
}

TEST_F(GoldenTest, HiddenStatesMatchLayerByLayer) {
  auto checkpoint = Checkpoint::Open(kDir);
  ASSERT_TRUE(checkpoint.ok()) << checkpoint.status();
  const ModelConfig& c = (*checkpoint)->config();
  const int64_t H = c.hidden_size;
  for (const std::string name : {"p5", "p64"}) {
    auto debug = testing::ReadGolden(kDir + "/golden/debug_" + name + ".safetensors");
    const auto& hidden = debug.at("hidden_states").f32;  // [L + 1, n, H]
    const std::vector<int32_t> prompt = Prompt(name);
    const int64_t n = static_cast<int64_t>(prompt.size());

    SequenceState state(c, 0, c.num_hidden_layers);
    BatchLayout batch;
    batch.Add(n, 0, &state);
    std::vector<float> x(n * H);
    EmbedTokens(*LoadEmbedding(**checkpoint), prompt.data(), n, x.data());
    EXPECT_LE(MaxAbsDiff(x.data(), hidden.data(), n * H), kTolerance) << name << " embeddings";
    for (int l = 0; l < c.num_hidden_layers; ++l) {
      auto attention = LoadAttentionBlock(**checkpoint, l);
      auto experts = LoadExperts(**checkpoint, l);
      ASSERT_TRUE(attention.ok() && experts.ok());
      DecoderLayerForward(c, *attention, *experts, batch, x.data());
      if (l + 1 < c.num_hidden_layers) {
        EXPECT_LE(MaxAbsDiff(x.data(), hidden.data() + (l + 1) * n * H, n * H), kTolerance)
            << name << " after layer " << l;
      }
    }
  }
}

}  // namespace
}  // namespace mmx::model
