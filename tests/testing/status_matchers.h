// gmock matchers for absl::Status and absl::StatusOr<T>, in the shape of Abseil's
// absl/status/status_matchers.h (Debian 12's abseil 20220623 ships none):
//
//   EXPECT_THAT(Checkpoint::Open(dir), StatusIs(absl::StatusCode::kDataLoss, HasSubstr("offset")));
//   EXPECT_THAT(config.status(), IsOk());
//
// There is deliberately no "is not OK" matcher: a test names the code it expects.
#pragma once

#include <ostream>
#include <string>
#include <type_traits>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace mmx::testing {
namespace internal {

inline const absl::Status& GetStatus(const absl::Status& status) { return status; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& status_or) {
  return status_or.status();
}

template <typename T>
class StatusIsImpl : public ::testing::MatcherInterface<T> {
 public:
  StatusIsImpl(absl::StatusCode code, ::testing::Matcher<const std::string&> message)
      : code_(code), message_(std::move(message)) {}

  bool MatchAndExplain(T value, ::testing::MatchResultListener* listener) const override {
    const absl::Status& status = GetStatus(value);
    if (status.code() != code_) {
      *listener << "whose status is " << status.ToString();
      return false;
    }
    const std::string message(status.message());
    ::testing::StringMatchResultListener inner;
    if (!message_.MatchAndExplain(message, &inner)) {
      *listener << "whose message \"" << message << "\" does not match";
      if (!inner.str().empty()) *listener << ", " << inner.str();
      return false;
    }
    return true;
  }

  void DescribeTo(std::ostream* os) const override {
    *os << "has status code " << absl::StatusCodeToString(code_) << " and a message that ";
    message_.DescribeTo(os);
  }
  void DescribeNegationTo(std::ostream* os) const override {
    *os << "does not have status code " << absl::StatusCodeToString(code_)
        << " or has a message that ";
    message_.DescribeNegationTo(os);
  }

 private:
  absl::StatusCode code_;
  ::testing::Matcher<const std::string&> message_;
};

template <typename MessageMatcher>
class StatusIsMatcher {
 public:
  StatusIsMatcher(absl::StatusCode code, MessageMatcher message)
      : code_(code), message_(std::move(message)) {}

  // Converts to a matcher of whatever type EXPECT_THAT hands over (Status or StatusOr<T>, by
  // value or reference).
  template <typename T>
  operator ::testing::Matcher<T>() const {  // NOLINT: implicit by design, like gmock's own
    return ::testing::Matcher<T>(new StatusIsImpl<T>(
        code_, ::testing::SafeMatcherCast<const std::string&>(message_)));
  }

 private:
  absl::StatusCode code_;
  MessageMatcher message_;
};

}  // namespace internal

// Matches a Status or StatusOr whose code is `code` and whose message matches `message`
// (a string, or any string matcher such as HasSubstr).
template <typename MessageMatcher>
internal::StatusIsMatcher<MessageMatcher> StatusIs(absl::StatusCode code, MessageMatcher message) {
  return internal::StatusIsMatcher<MessageMatcher>(code, std::move(message));
}
inline internal::StatusIsMatcher<::testing::internal::AnythingMatcher> StatusIs(
    absl::StatusCode code) {
  return StatusIs(code, ::testing::_);
}

// Matches an OK Status, or a StatusOr holding a value.
inline internal::StatusIsMatcher<::testing::internal::AnythingMatcher> IsOk() {
  return StatusIs(absl::StatusCode::kOk);
}

}  // namespace mmx::testing
