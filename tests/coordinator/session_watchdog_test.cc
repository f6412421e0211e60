#include "coordinator/session_watchdog.h"

#include <atomic>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace mmx::coordinator {
namespace {

TEST(SessionWatchdogTest, BeatsEveryIntervalAndCallsOnSilentOnlyWhenTheWorkerStopsTalking) {
  absl::Mutex mu;
  int beats = 0;
  SessionWriter writer = [&](const v1::CoordinatorMessage& m) {
    EXPECT_TRUE(m.has_heartbeat());
    absl::MutexLock lock(&mu);
    ++beats;
    return true;
  };
  absl::Notification silent;
  absl::Duration silence;
  SessionWatchdog dog(absl::Milliseconds(10), absl::Milliseconds(300), writer, [&](absl::Duration d) {
    silence = d;
    silent.Notify();
  });
  // While the worker talks (every beat answered), 100 beats go by: three times the timeout.
  for (int answered = 0; answered < 100;) {
    {
      absl::MutexLock lock(&mu);
      auto more = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) { return beats > answered; };
      mu.Await(absl::Condition(&more));
      answered = beats;
    }
    dog.Heard();
  }
  EXPECT_FALSE(silent.HasBeenNotified());
  // Then it stops: on_silent comes after the timeout.
  const absl::Time stopped = absl::Now();
  ASSERT_TRUE(silent.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - stopped, absl::Milliseconds(300));
  EXPECT_GT(silence, absl::Milliseconds(300));
}

TEST(SessionWatchdogTest, IntervalIsAFifthOfTheTimeoutWithinBounds) {
  EXPECT_EQ(HeartbeatInterval(absl::Seconds(5)), absl::Seconds(1));
  EXPECT_EQ(HeartbeatInterval(absl::Seconds(60)), absl::Seconds(2));
  EXPECT_EQ(HeartbeatInterval(absl::Milliseconds(100)), absl::Milliseconds(50));
}

}  // namespace
}  // namespace mmx::coordinator
