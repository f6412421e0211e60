#include "coordinator/per_key_limit.h"

#include <memory>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

TEST(PerKeyLimitTest, AKeyGetsItsSlotsBackWhenItsCallsEndAndKeysDoNotShare) {
  PerKeyLimit limit(2);
  auto a1 = limit.Acquire("alice");
  auto a2 = limit.Acquire("alice");
  ASSERT_THAT(a1, IsOk());
  ASSERT_THAT(a2, IsOk());
  EXPECT_THAT(limit.Acquire("alice"),
              StatusIs(absl::StatusCode::kResourceExhausted, HasSubstr("--max-concurrent-per-key 2")));
  EXPECT_THAT(limit.Acquire("bob"), IsOk());  // released at once: the handle is a temporary
  EXPECT_EQ(limit.open("bob"), 0);
  a1->reset();
  EXPECT_EQ(limit.open("alice"), 1);
  EXPECT_THAT(limit.Acquire("alice"), IsOk());
}

TEST(PerKeyLimitTest, ZeroMeansNoLimit) {
  PerKeyLimit limit(0);
  std::vector<std::shared_ptr<void>> held;
  for (int i = 0; i < 100; ++i) {
    auto h = limit.Acquire("alice");
    ASSERT_THAT(h, IsOk());
    held.push_back(*h);
  }
  EXPECT_EQ(limit.open("alice"), 100);
}

}  // namespace
}  // namespace mmx::coordinator
