#include "base/wake_flag.h"

#include <thread>

#include "gtest/gtest.h"

namespace mmx {
namespace {

TEST(WakeFlagTest, AWakeBeforeTheWaitIsNotLost) {
  WakeFlag flag;
  flag.Wake();
  EXPECT_TRUE(flag.WaitUntil(absl::InfiniteFuture()));
  EXPECT_FALSE(flag.WaitUntil(absl::Now() + absl::Milliseconds(10)));  // taken by the first wait
}

TEST(WakeFlagTest, ClearForgetsAPendingWake) {
  WakeFlag flag;
  flag.Wake();
  flag.Clear();
  EXPECT_FALSE(flag.WaitUntil(absl::Now() + absl::Milliseconds(10)));
  EXPECT_FALSE(flag.StopToken().stop_requested());
}

TEST(WakeFlagTest, StopTokenIsStoppedByAPendingOrTheNextWake) {
  WakeFlag flag;
  flag.Wake();
  EXPECT_TRUE(flag.StopToken().stop_requested());  // pending: stopped already
  flag.Clear();
  std::stop_token token = flag.StopToken();
  EXPECT_FALSE(token.stop_requested());
  std::thread waker([&] { flag.Wake(); });
  waker.join();
  EXPECT_TRUE(token.stop_requested());
  EXPECT_TRUE(flag.WaitUntil(absl::InfiniteFuture()));  // the wake is still there for a wait
  EXPECT_FALSE(flag.StopToken().stop_requested());      // and once taken, a fresh token
}

}  // namespace
}  // namespace mmx
