#include "coordinator/waves.h"

#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

TEST(WavesTest, ASequenceNextStepCarriesOneDecodeTokenOrItsNextPrefillChunk) {
  SequenceProgress decoding{/*prompt_length=*/10, /*generated=*/3, /*processed=*/12};
  EXPECT_EQ(NextStepTokens(decoding, 4), 1);
  SequenceProgress prefilling{/*prompt_length=*/10, /*generated=*/0, /*processed=*/8};
  EXPECT_EQ(NextStepTokens(prefilling, 4), 2);  // what is left of the prompt
  SequenceProgress fresh{/*prompt_length=*/10, /*generated=*/0, /*processed=*/0};
  EXPECT_EQ(NextStepTokens(fresh, 4), 4);       // a chunk
  SequenceProgress replaying{/*prompt_length=*/3, /*generated=*/5, /*processed=*/0};
  EXPECT_EQ(NextStepTokens(replaying, 16), 8);  // its replay: prompt and generated tokens
}

TEST(WavesTest, ANewSequenceJoinsTheWaveWithTheFewestTokens) {
  EXPECT_EQ(ChooseWave({5, 2, 9}, {false, false, false}), 1);
  EXPECT_EQ(ChooseWave({5, 2, 9}, {false, true, false}), 1);  // fewest tokens first, out or not
}

TEST(WavesTest, AmongEqualWavesOneWithNoStepOutIsChosen) {
  EXPECT_EQ(ChooseWave({3, 3, 3}, {true, false, false}), 1);
  EXPECT_EQ(ChooseWave({3, 3}, {true, true}), 0);
  EXPECT_EQ(ChooseWave({0}, {true}), 0);
}

TEST(WavesTest, SequencesJoiningOneByOneSpreadEvenly) {
  std::vector<int64_t> tokens(3, 0);
  const std::vector<bool> busy(3, false);
  for (int i = 0; i < 9; ++i) ++tokens[ChooseWave(tokens, busy)];
  EXPECT_EQ(tokens, (std::vector<int64_t>{3, 3, 3}));
}

}  // namespace
}  // namespace mmx::coordinator
