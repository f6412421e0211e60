#include "worker/leave_request.h"

#include <thread>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace mmx::worker {
namespace {

TEST(LeaveRequestTest, WithoutAHandlerTheCallerExitsAndALaterHandlerRunsAtOnce) {
  LeaveRequest leave;
  EXPECT_FALSE(leave.Request());  // not serving: nothing to hand over
  EXPECT_TRUE(leave.requested());
  int runs = 0;
  leave.SetHandler([&runs] { ++runs; });  // serving starts after the SIGTERM: leave at once
  EXPECT_EQ(runs, 1);
  EXPECT_TRUE(leave.Request());
  EXPECT_EQ(runs, 2);
  leave.SetHandler(nullptr);
  EXPECT_FALSE(leave.Request());
  EXPECT_EQ(runs, 2);
}

// The session clears the handler as it ends; a SIGTERM handled at that moment must be done with
// the session before the clearing returns (the handler writes to it).
TEST(LeaveRequestTest, ClearingTheHandlerWaitsForARunInProgress) {
  LeaveRequest leave;
  absl::Notification entered, release;
  bool handler_done = false;
  leave.SetHandler([&] {
    entered.Notify();
    release.WaitForNotification();
    handler_done = true;
  });
  std::thread signal([&] { leave.Request(); });
  entered.WaitForNotification();
  std::thread releaser([&] { release.Notify(); });
  leave.SetHandler(nullptr);
  EXPECT_TRUE(handler_done);  // read after the clearing returned: the run had finished
  signal.join();
  releaser.join();
}

}  // namespace
}  // namespace mmx::worker
