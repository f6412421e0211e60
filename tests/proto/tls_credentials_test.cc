// The TLS helpers' pure parts: which listen addresses are loopback (plain text allowed there
// without --insecure), where the metrics endpoint listens by default, and file errors.
#include "proto/tls_credentials.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::rpc {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

TEST(TlsCredentialsTest, LoopbackAddresses) {
  for (const char* a : {"127.0.0.1:7070", "127.1.2.3:0", "localhost:7070", "[::1]:7070"}) {
    EXPECT_TRUE(IsLoopbackAddress(a)) << a;
  }
  for (const char* a : {"0.0.0.0:7070", "10.0.0.5:7070", "[::]:7070", ":7070", "coord-host:7070"}) {
    EXPECT_FALSE(IsLoopbackAddress(a)) << a;
  }
}

TEST(TlsCredentialsTest, TheMetricsEndpointDefaultsToLoopbackNextToTheGrpcPort) {
  EXPECT_EQ(DefaultMetricsAddress("0.0.0.0:7070"), "127.0.0.1:7071");
  EXPECT_EQ(DefaultMetricsAddress("10.0.0.5:7070"), "127.0.0.1:7071");
  EXPECT_EQ(DefaultMetricsAddress("127.0.0.1:7070"), "127.0.0.1:7071");
  EXPECT_EQ(DefaultMetricsAddress("[::1]:7070"), "[::1]:7071");
  EXPECT_EQ(DefaultMetricsAddress("0.0.0.0:0"), "127.0.0.1:0");  // any port, as the gRPC one
}

TEST(TlsCredentialsTest, MissingOrHalfGivenFilesAreClearErrors) {
  EXPECT_THAT(MakeServerCredentials({}), IsOk());  // plain text
  EXPECT_THAT(MakeServerCredentials({"/nonexistent.crt", "", ""}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("--tls-cert and --tls-key")));
  EXPECT_THAT(MakeServerCredentials({"/nonexistent.crt", "/nonexistent.key", ""}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("--tls-cert: cannot read /nonexistent.crt")));
  EXPECT_THAT(MakeChannelCredentials({"", "/a.crt", ""}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("both --tls-cert and --tls-key")));
  EXPECT_THAT(MakeChannelCredentials({"/nonexistent-ca.crt", "", ""}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("--tls-ca")));
  EXPECT_THAT(MakeChannelCredentials({"/proc/self/status", "", ""}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not a PEM file")));
}

}  // namespace
}  // namespace mmx::rpc
