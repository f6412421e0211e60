// DType: names, sizes, and which dtypes a checkpoint may declare.
#include "base/dtype.h"

#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx {
namespace {

using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

TEST(DTypeTest, ParsesTheCheckpointDTypes) {
  EXPECT_EQ(*ParseDType("BF16"), DType::kBF16);
  EXPECT_EQ(*ParseDType("F16"), DType::kF16);
  EXPECT_EQ(*ParseDType("F32"), DType::kF32);
}

TEST(DTypeTest, RefusesI8FromCheckpoints) {
  // mmx's I8 carries per-row scales that a safetensors I8 tensor does not have.
  EXPECT_THAT(ParseDType("I8"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unsupported dtype 'I8'")));
}

TEST(DTypeTest, SizesAndNames) {
  EXPECT_EQ(DTypeSize(DType::kBF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF16), 2u);
  EXPECT_EQ(DTypeSize(DType::kF32), 4u);
  EXPECT_EQ(DTypeSize(DType::kI8), 1u);
  EXPECT_STREQ(DTypeName(DType::kI8), "I8");
}

}  // namespace
}  // namespace mmx
