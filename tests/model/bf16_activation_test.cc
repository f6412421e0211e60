// The bf16-activation mode against the fp32 mode on the golden checkpoint, statistically (the
// golden README: router and argmax flips make element-wise bf16 comparisons meaningless).
// Prefill runs batched GEMMs (bf16 in this mode); decode is GEMV (exact in both).
#include <cmath>
#include <fstream>
#include <vector>

#include "gtest/gtest.h"
#include "model/generate_local.h"
#include "model/model_runner.h"
#include "model/sampling.h"
#include "nlohmann/json.hpp"

namespace mmx::model {
namespace {

const std::string kDir = std::string(MMX_TEST_DATA_DIR) + "/golden/tiny-a";

std::vector<float> PrefillLogits(ModelRunner& runner, const std::vector<int32_t>& prompt) {
  EXPECT_TRUE(runner.StartSequence(1).ok());
  auto out = runner.Step({StepInput{1, prompt, true}});
  runner.EndSequence(1);
  EXPECT_TRUE(out.ok()) << out.status();
  return out->logits[0];
}

TEST(Bf16ActivationTest, CloseToFp32ModeStatistically) {
  auto runner = ModelRunner::Load(kDir);
  ASSERT_TRUE(runner.ok()) << runner.status();
  std::ifstream in(kDir + "/golden/prompts.json");
  const auto prompt = nlohmann::json::parse(in)["prompts"]["p300"].get<std::vector<int32_t>>();
  const int64_t V = (*runner)->config().vocab_size;

  const std::vector<float> fp32 = PrefillLogits(**runner, prompt);
  (*runner)->set_activation_precision(kernels::ActivationPrecision::kBf16);
  const std::vector<float> bf16 = PrefillLogits(**runner, prompt);
  ASSERT_EQ(fp32.size(), bf16.size());

  double sum = 0, worst = 0;
  int agree = 0;
  const int64_t rows = static_cast<int64_t>(fp32.size()) / V;
  for (size_t i = 0; i < fp32.size(); ++i) {
    const double d = std::fabs(double(fp32[i]) - bf16[i]);
    sum += d;
    worst = std::max(worst, d);
  }
  for (int64_t r = 0; r < rows; ++r) agree += Argmax(fp32.data() + r * V, V) == Argmax(bf16.data() + r * V, V);
  const double mean = sum / fp32.size();
  std::printf("bf16 vs fp32 activations, p300 prefill: mean |diff| %.4f, max %.4f, argmax agreement %d/%lld\n",
              mean, worst, agree, static_cast<long long>(rows));
  EXPECT_GT(worst, 0.0);         // the mode does round
  EXPECT_LT(mean, 0.07);         // the golden README's simulated all-bf16 run: mean 0.0735
  EXPECT_GE(agree, rows * 9 / 10);
}

}  // namespace
}  // namespace mmx::model
