#include "transport/net_interface.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::transport {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;

TEST(NetInterfaceTest, LoopbackIsReachedThroughLo) {
  absl::StatusOr<std::string> v4 = InterfaceReaching("127.0.0.1:5000");
  ASSERT_THAT(v4, IsOk());
  EXPECT_EQ(*v4, "lo");
  absl::StatusOr<std::string> named = InterfaceReaching("localhost:1");
  ASSERT_THAT(named, IsOk());
  EXPECT_EQ(*named, "lo");
}

TEST(NetInterfaceTest, UnresolvableHostIsInvalidArgument) {
  EXPECT_THAT(InterfaceReaching("no-such-host.invalid:5000"),
              StatusIs(absl::StatusCode::kInvalidArgument, ::testing::HasSubstr("cannot resolve")));
  EXPECT_THAT(InterfaceReaching(":5000"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace mmx::transport
