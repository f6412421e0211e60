// The golden checks every StageCompute backend must pass (tests/model/stage_compute_test.cc for
// the CPU, tests/cuda/cuda_stage_compute_test.cc for the GPU): prefill logits at every position,
// chunked prefill, greedy decode (ids and logits), and a batch that mixes one sequence's decode
// with another's prefill, all within `tolerance` of the official outputs.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/sampling.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden_reader.h"
#include "tests/testing/stage_compute_model.h"

namespace mmx::testing {

// The golden set; MMX_TEST_DATA_DIR in the environment overrides the build's path (the GPU kit's
// binaries run from another checkout, tests/gpu/pack.sh).
inline const std::string& GoldenDir() {
  static const std::string dir = [] {
    const char* env = std::getenv("MMX_TEST_DATA_DIR");
    return std::string(env != nullptr && *env != '\0' ? env : MMX_TEST_DATA_DIR) + "/golden/tiny-a";
  }();
  return dir;
}

inline std::vector<int32_t> GoldenPrompt(const std::string& name) {
  std::ifstream in(GoldenDir() + "/golden/prompts.json");
  return nlohmann::json::parse(in)["prompts"][name].get<std::vector<int32_t>>();
}

inline float MaxAbsDiff(const float* a, const float* b, size_t n) {
  float worst = 0;
  for (size_t i = 0; i < n; ++i) worst = std::max(worst, std::fabs(a[i] - b[i]));
  return worst;
}

inline void CheckPrefillMatchesGolden(StageComputeModel& m, int64_t V, float tolerance) {
  auto golden = ReadGolden(GoldenDir() + "/golden/prefill_logits.safetensors");
  for (const std::string name : {"p5", "p64"}) {
    auto out = m.Step({{1, GoldenPrompt(name), true}});
    ASSERT_TRUE(out.ok()) << out.status();
    const auto& want = golden.at(name).f32;
    ASSERT_EQ((*out)[0].size(), want.size()) << name;
    EXPECT_LE(MaxAbsDiff((*out)[0].data(), want.data(), want.size()), tolerance) << name;
    m.End(1);
  }
}

inline void CheckChunkedPrefillMatchesGolden(StageComputeModel& m, int64_t V, float tolerance) {
  auto golden = ReadGolden(GoldenDir() + "/golden/prefill_logits.safetensors");
  const std::vector<int32_t> prompt = GoldenPrompt("p300");
  std::vector<float> last;
  for (size_t i = 0; i < prompt.size(); i += 97) {
    std::vector<int32_t> chunk(prompt.begin() + i, prompt.begin() + std::min(prompt.size(), i + 97));
    auto out = m.Step({{2, chunk, false}});
    ASSERT_TRUE(out.ok()) << out.status();
    last = (*out)[0];
  }
  const auto& want = golden.at("p300").f32;
  EXPECT_LE(MaxAbsDiff(last.data(), want.data() + (prompt.size() - 1) * V, V), tolerance);
  m.End(2);
}

inline void CheckGreedyDecodeMatchesGolden(StageComputeModel& m, int64_t V, float tolerance) {
  auto golden = ReadGolden(GoldenDir() + "/golden/decode.safetensors");
  for (const std::string name : {"p5", "p300"}) {
    const auto& ids = golden.at(name + ".generated_ids").i64;
    const auto& want = golden.at(name + ".decode_logits").f32;
    auto out = m.Step({{3, GoldenPrompt(name), false}});
    ASSERT_TRUE(out.ok()) << out.status();
    int32_t next = model::Argmax((*out)[0].data(), V);
    for (size_t i = 0; i < ids.size(); ++i) {
      EXPECT_EQ(next, ids[i]) << name << " token " << i;
      if (next != ids[i]) break;
      if (i + 1 == ids.size()) break;
      out = m.Step({{3, {next}, false}});
      ASSERT_TRUE(out.ok()) << out.status();
      // Row i of decode_logits follows generated token i.
      EXPECT_LE(MaxAbsDiff((*out)[0].data(), want.data() + i * V, V), tolerance) << name << " step " << i;
      next = model::Argmax((*out)[0].data(), V);
    }
    m.End(3);
  }
}

inline void CheckMixedDecodeAndPrefillBatch(StageComputeModel& m, int64_t V, float tolerance) {
  auto decode = ReadGolden(GoldenDir() + "/golden/decode.safetensors");
  auto prefill = ReadGolden(GoldenDir() + "/golden/prefill_logits.safetensors");
  const std::vector<int32_t> p64 = GoldenPrompt("p64"), p5 = GoldenPrompt("p5"), p1 = GoldenPrompt("p1");
  ASSERT_TRUE(m.Step({{4, p64, false}, {6, p1, false}}).ok());
  const auto& ids64 = decode.at("p64.generated_ids").i64;
  const auto& ids1 = decode.at("p1.generated_ids").i64;
  // Two decodes (adjacent one-token rows) around a prefill, in one batch.
  auto out = m.Step({{4, {static_cast<int32_t>(ids64[0])}, false},
                     {6, {static_cast<int32_t>(ids1[0])}, false},
                     {5, p5, true}});
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_LE(MaxAbsDiff((*out)[0].data(), decode.at("p64.decode_logits").f32.data(), V), tolerance);
  EXPECT_LE(MaxAbsDiff((*out)[1].data(), decode.at("p1.decode_logits").f32.data(), V), tolerance);
  const auto& want5 = prefill.at("p5").f32;
  ASSERT_EQ((*out)[2].size(), want5.size());
  EXPECT_LE(MaxAbsDiff((*out)[2].data(), want5.data(), want5.size()), tolerance);
  m.End(4);
  m.End(5);
  m.End(6);
}

}  // namespace mmx::testing
