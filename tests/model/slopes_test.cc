// The lightning attention's per-layer slopes against the official ones (the golden summary).
#include <fstream>

#include "gtest/gtest.h"
#include "model/config.h"
#include "model/weights.h"
#include "nlohmann/json.hpp"
#include "tests/testing/golden.h"

namespace mmx::model {
namespace {

TEST(SlopesTest, MatchTheOfficialPerLayerSlopes) {
  auto config = ModelConfig::FromFile(testing::GoldenDir());
  ASSERT_TRUE(config.ok()) << config.status();
  std::ifstream in(testing::GoldenDir() + "/golden/summary.json");
  auto slopes = nlohmann::json::parse(in)["layer_slopes"];
  ASSERT_EQ(slopes.size(), static_cast<size_t>(config->num_hidden_layers));
  for (int l = 0; l < config->num_hidden_layers; ++l) {
    std::vector<float> ours = LightningSlopes(*config, l);
    ASSERT_EQ(ours.size(), static_cast<size_t>(config->num_attention_heads));
    for (int h = 0; h < config->num_attention_heads; ++h) {
      EXPECT_FLOAT_EQ(ours[h], slopes[l][h].get<float>()) << "layer " << l << " head " << h;
    }
  }
}

}  // namespace
}  // namespace mmx::model
