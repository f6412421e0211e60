#include "coordinator/api_keys.h"

#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kKeys[] =
    "# name role key\n"
    "alice user alice-0123456789abcdef\n"
    "\n"
    "ops   admin ops-0123456789abcdefgh\n";

TEST(ApiKeysTest, KnownKeysNameTheirCallerAndRole) {
  auto keys = ParseApiKeys(kKeys, "keys.txt");
  ASSERT_THAT(keys, IsOk());
  ApiKeys table(*keys);
  auto alice = table.Authenticate("Bearer alice-0123456789abcdef");
  ASSERT_THAT(alice, IsOk());
  EXPECT_EQ(alice->name, "alice");
  EXPECT_FALSE(alice->admin);
  auto ops = table.Authenticate("Bearer ops-0123456789abcdefgh");
  ASSERT_THAT(ops, IsOk());
  EXPECT_TRUE(ops->admin);
}

TEST(ApiKeysTest, MissingMalformedAndUnknownKeysAreUnauthenticatedWithoutEchoingThem) {
  ApiKeys table(*ParseApiKeys(kKeys, "keys.txt"));
  EXPECT_THAT(table.Authenticate(""), StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("needs an API key")));
  EXPECT_THAT(table.Authenticate("alice-0123456789abcdef"),
              StatusIs(absl::StatusCode::kUnauthenticated, HasSubstr("Bearer KEY")));
  const absl::StatusOr<Caller> unknown = table.Authenticate("Bearer alice-0123456789abcdeX");
  EXPECT_THAT(unknown, StatusIs(absl::StatusCode::kUnauthenticated, "unknown API key"));
  EXPECT_THAT(table.Authenticate("Bearer alice-0123456789abcde"), StatusIs(absl::StatusCode::kUnauthenticated));
}

TEST(ApiKeysTest, BadFilesNameTheLineAndNeverTheKey) {
  EXPECT_THAT(ParseApiKeys("alice user\n", "k"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k:1: expected NAME ROLE KEY")));
  EXPECT_THAT(ParseApiKeys("alice root alice-0123456789abcdef\n", "k"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("role 'root' is not user or admin")));
  const auto short_key = ParseApiKeys("alice user short-secret\n", "k");
  EXPECT_THAT(short_key, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("shorter than 16")));
  EXPECT_THAT(short_key.status().message(), Not(HasSubstr("short-secret")));
  const auto twice = ParseApiKeys("a user same-key-0123456789\nb admin same-key-0123456789\n", "k");
  EXPECT_THAT(twice, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("k:2: the key of 'b' is also another name's")));
  EXPECT_THAT(twice.status().message(), Not(HasSubstr("same-key")));
  EXPECT_THAT(ParseApiKeys("# nothing\n", "k"), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no keys")));
}

TEST(ApiKeysTest, ReloadTakesTheNewFileAndKeepsTheOldKeysWhenItIsBad) {
  const std::string path = ::testing::TempDir() + "/api_keys_test_" + std::to_string(getpid());
  std::ofstream(path) << kKeys;
  auto table = ApiKeys::Load(path);
  ASSERT_THAT(table, IsOk());
  std::ofstream(path) << "bob user bob-0123456789abcdefgh\n";
  ASSERT_THAT((*table)->Reload(), IsOk());
  EXPECT_THAT((*table)->Authenticate("Bearer bob-0123456789abcdefgh"), IsOk());
  EXPECT_THAT((*table)->Authenticate("Bearer alice-0123456789abcdef"), StatusIs(absl::StatusCode::kUnauthenticated));
  std::ofstream(path) << "broken\n";
  EXPECT_THAT((*table)->Reload(), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT((*table)->Authenticate("Bearer bob-0123456789abcdefgh"), IsOk());
  EXPECT_THAT(ApiKeys::Load(path + ".none"), StatusIs(absl::StatusCode::kNotFound, HasSubstr("--api-keys")));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace mmx::coordinator
