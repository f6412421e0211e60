#include "proto/join_token.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::rpc {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

std::string Write(const std::string& text) {
  const std::string path = ::testing::TempDir() + "/join-token-" +
                           ::testing::UnitTest::GetInstance()->current_test_info()->name();
  std::ofstream(path) << text;
  return path;
}

TEST(JoinTokenTest, ReadsTheOneLineWithoutSurroundingWhitespace) {
  absl::StatusOr<std::string> token = ReadJoinTokenFile(Write("  0123456789abcdef0123\n"));
  ASSERT_THAT(token, IsOk());
  EXPECT_EQ(*token, "0123456789abcdef0123");
}

TEST(JoinTokenTest, RefusesWhatCannotBeAGoodTokenSayingHowToMakeOne) {
  EXPECT_THAT(ReadJoinTokenFile("/nonexistent/token"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot read")));
  const auto refused = [](const std::string& text, const std::string& why) {
    EXPECT_THAT(ReadJoinTokenFile(Write(text)),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         ::testing::AllOf(HasSubstr(why), HasSubstr("openssl rand -hex 32"))))
        << text;
  };
  refused("\n", "empty");
  refused("short", "5 characters, fewer than 16");
  refused("0123456789abcdef\n0123456789abcdef", "more than one line");
  refused("0123456789abcdef 01", "other than printable ASCII");
}

TEST(JoinTokenTest, ConstantTimeEqualsComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abc", "abc"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "abd"));
  EXPECT_FALSE(ConstantTimeEquals("abc", "ab"));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

}  // namespace
}  // namespace mmx::rpc
