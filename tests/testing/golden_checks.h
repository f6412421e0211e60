// The golden checks every backend and cluster layout must pass, each driving the engine step by
// step (tests/testing/engine_stepper.h): prefill logits at every position, a long prompt,
// chunked prefill at several chunk sizes, teacher-forced and free-running (greedy) decode, the
// official batched case, and sequences of different lengths packed into the same steps, all
// within `tolerance` of the official outputs (5e-4 for fp32 activations, the golden README's
// figure).
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "model/sampling.h"
#include "tests/testing/engine_stepper.h"
#include "tests/testing/golden.h"

namespace mmx::testing {

inline const std::vector<std::string>& GoldenPromptNames() {
  static const std::vector<std::string> names = {"p1", "p5", "p64", "p300", "p700"};
  return names;
}

// Every position's logits of `prompt`, fed in chunks of `chunk` tokens as sequence `id`.
inline std::vector<float> PrefillLogits(EngineStepper& m, uint64_t id, const std::vector<int32_t>& prompt,
                                        size_t chunk) {
  std::vector<float> all;
  for (size_t i = 0; i < prompt.size(); i += chunk) {
    std::vector<int32_t> part(prompt.begin() + i, prompt.begin() + std::min(prompt.size(), i + chunk));
    auto out = m.Step({{id, part, true}});
    EXPECT_TRUE(out.ok()) << out.status();
    if (!out.ok()) return {};
    all.insert(all.end(), (*out)[0].begin(), (*out)[0].end());
  }
  m.End(id);
  return all;
}

// Also prints the largest difference seen ("golden prefill logits: max |diff| ..."), which
// tests/gpu/run.sh puts in its summary.
inline void CheckPrefillAtEveryPosition(EngineStepper& m, float tolerance) {
  auto golden = ReadGoldenFile("prefill_logits.safetensors");
  float worst = 0;
  for (const std::string name : {"p1", "p5", "p64", "p300"}) {
    const std::vector<float> ours = PrefillLogits(m, 1, GoldenPrompt(name), 1 << 20);
    const auto& want = golden.at(name).f32;
    ASSERT_EQ(ours.size(), want.size()) << name;
    const float diff = MaxAbsDiff(ours.data(), want.data(), want.size());
    EXPECT_LE(diff, tolerance) << name;
    worst = std::max(worst, diff);
  }
  // p700 in chunks of 256: the golden set keeps its last 64 positions.
  const std::vector<float> ours = PrefillLogits(m, 2, GoldenPrompt("p700"), 256);
  const auto& want = golden.at("p700.last64").f32;
  ASSERT_GE(ours.size(), want.size());
  const float diff = MaxAbsDiff(ours.data() + ours.size() - want.size(), want.data(), want.size());
  EXPECT_LE(diff, tolerance) << "p700";
  worst = std::max(worst, diff);
  std::printf("golden prefill logits (p1, p5, p64, p300, p700): max |diff| %.2e (tolerance %.0e)\n", worst, tolerance);
}

inline void CheckChunkedPrefill(EngineStepper& m, float tolerance) {
  auto golden = ReadGoldenFile("prefill_logits.safetensors");
  const std::vector<int32_t> prompt = GoldenPrompt("p300");
  const std::vector<float> token_by_token = PrefillLogits(m, 3, prompt, 1);
  const auto& want = golden.at("p300").f32;
  ASSERT_EQ(token_by_token.size(), want.size());
  EXPECT_LE(MaxAbsDiff(token_by_token.data(), want.data(), want.size()), tolerance) << "chunks of 1";
  for (size_t chunk : {7, 64, 97, 256}) {
    const std::vector<float> ours = PrefillLogits(m, 3, prompt, chunk);
    ASSERT_EQ(ours.size(), want.size()) << chunk;
    EXPECT_LE(MaxAbsDiff(ours.data(), token_by_token.data(), ours.size()), tolerance / 5) << "chunks of " << chunk;
    EXPECT_LE(MaxAbsDiff(ours.data(), want.data(), want.size()), tolerance) << "chunks of " << chunk;
  }
}

// Decode after the prompt: feeding the golden ids (teacher forcing, so one difference cannot
// cascade) or the argmax of our own logits (free-running: the ids must be the golden ones).
inline void CheckDecode(EngineStepper& m, float tolerance, bool teacher_forced) {
  auto golden = ReadGoldenFile("decode.safetensors");
  const int64_t V = static_cast<int64_t>(golden.at("p5.decode_logits").shape.back());
  for (const std::string& name : GoldenPromptNames()) {
    const auto& ids = golden.at(name + ".generated_ids").i64;
    const auto& want = golden.at(name + ".decode_logits").f32;
    auto out = m.Step({{4, GoldenPrompt(name), false}});
    ASSERT_TRUE(out.ok()) << out.status();
    int32_t next = model::Argmax((*out)[0].data(), V);
    for (size_t i = 0; i < ids.size(); ++i) {
      if (!teacher_forced) {
        EXPECT_EQ(next, ids[i]) << name << " token " << i;
        if (next != ids[i]) break;
      }
      out = m.Step({{4, {teacher_forced ? static_cast<int32_t>(ids[i]) : next}, false}});
      ASSERT_TRUE(out.ok()) << out.status();
      // Row i of decode_logits follows generated token i.
      EXPECT_LE(MaxAbsDiff((*out)[0].data(), want.data() + i * V, V), tolerance) << name << " step " << i;
      next = model::Argmax((*out)[0].data(), V);
    }
    m.End(4);
  }
}

// The official batched case: two 300-token rows prefilled and decoded in the same steps.
inline void CheckBatchedRows(EngineStepper& m, float tolerance, int micro_batches = 1) {
  auto golden = ReadGoldenFile("batched.safetensors");
  const auto& input_ids = golden.at("input_ids").i64;  // [2, 300]
  const auto& last64 = golden.at("prefill_logits.last64").f32;  // [2, 64, V]
  const auto& gen = golden.at("generated_ids").i64;             // [2, 16]
  const auto& decode = golden.at("decode_logits").f32;          // [2, 16, V]
  const int64_t V = static_cast<int64_t>(golden.at("decode_logits").shape.back());
  std::vector<EngineStepper::Input> step(2);
  for (int r = 0; r < 2; ++r) {
    step[r] = {static_cast<uint64_t>(10 + r), std::vector<int32_t>(input_ids.begin() + r * 300, input_ids.begin() + (r + 1) * 300), true};
  }
  auto out = m.Step(step, micro_batches);
  ASSERT_TRUE(out.ok()) << out.status();
  std::vector<int32_t> next(2);
  for (int r = 0; r < 2; ++r) {
    EXPECT_LE(MaxAbsDiff((*out)[r].data() + 236 * V, last64.data() + r * 64 * V, 64 * V), tolerance) << "row " << r;
    next[r] = model::Argmax((*out)[r].data() + 299 * V, V);
  }
  for (int i = 0; i < 16; ++i) {
    for (int r = 0; r < 2; ++r) {
      EXPECT_EQ(next[r], gen[r * 16 + i]) << "row " << r << " token " << i;
      step[r] = {static_cast<uint64_t>(10 + r), {next[r]}, false};
    }
    out = m.Step(step, micro_batches);
    ASSERT_TRUE(out.ok()) << out.status();
    for (int r = 0; r < 2; ++r) {
      EXPECT_LE(MaxAbsDiff((*out)[r].data(), decode.data() + (r * 16 + i) * V, V), tolerance) << "row " << r << " step " << i;
      next[r] = model::Argmax((*out)[r].data(), V);
    }
  }
  m.End(10);
  m.End(11);
}

// Sequences of different lengths packed into the same steps without padding (what the official
// code cannot do: its padded batches are wrong): prompts in chunks of 50 finish prefill at
// different steps, so prefill chunks and decode tokens share steps; each must give what it
// gives alone.
inline void CheckMixedLengthBatch(EngineStepper& m, float tolerance, int micro_batches = 1) {
  auto golden = ReadGoldenFile("decode.safetensors");
  const int64_t V = static_cast<int64_t>(golden.at("p5.decode_logits").shape.back());
  const std::vector<std::string> names = {"p64", "p1", "p300", "p5"};
  struct Live {
    uint64_t id;
    std::vector<int32_t> prompt;
    size_t done = 0;
    std::vector<int32_t> ids;
    std::vector<float> decode_logits;
  };
  std::vector<Live> live;
  for (size_t i = 0; i < names.size(); ++i) live.push_back({20 + i, GoldenPrompt(names[i]), 0, {}, {}});
  while (true) {
    std::vector<EngineStepper::Input> step;
    std::vector<Live*> members;
    for (Live& s : live) {
      if (s.ids.size() == 16) continue;
      if (s.done < s.prompt.size()) {
        const size_t n = std::min<size_t>(50, s.prompt.size() - s.done);
        step.push_back({s.id, std::vector<int32_t>(s.prompt.begin() + s.done, s.prompt.begin() + s.done + n), false});
        s.done += n;
      } else {
        step.push_back({s.id, {s.ids.back()}, false});
      }
      members.push_back(&s);
    }
    if (step.empty()) break;
    auto out = m.Step(step, micro_batches);
    ASSERT_TRUE(out.ok()) << out.status();
    for (size_t i = 0; i < members.size(); ++i) {
      Live& s = *members[i];
      if (s.done < s.prompt.size()) continue;  // mid-prompt
      if (!s.ids.empty()) s.decode_logits.insert(s.decode_logits.end(), (*out)[i].begin(), (*out)[i].end());
      s.ids.push_back(model::Argmax((*out)[i].data(), V));
    }
  }
  for (size_t i = 0; i < live.size(); ++i) {
    const auto& ids = golden.at(names[i] + ".generated_ids").i64;
    EXPECT_EQ(live[i].ids, std::vector<int32_t>(ids.begin(), ids.end())) << names[i];
    const auto& want = golden.at(names[i] + ".decode_logits").f32;
    ASSERT_EQ(live[i].decode_logits.size(), 15u * V) << names[i];
    EXPECT_LE(MaxAbsDiff(live[i].decode_logits.data(), want.data(), 15 * V), tolerance) << names[i];
    m.End(live[i].id);
  }
}

}  // namespace mmx::testing
