#include "worker/heartbeats.h"

#include "gtest/gtest.h"

namespace mmx::worker {
namespace {

// Counts the worker's messages; Close is what a silent coordinator causes.
class CountingSession final : public ControlSession {
 public:
  bool Write(const v1::WorkerMessage& m) override {
    EXPECT_TRUE(m.has_heartbeat());
    absl::MutexLock lock(&mu_);
    ++beats_;
    return !closed_;
  }
  bool Read(v1::CoordinatorMessage*) override { return false; }
  void Close() override {
    absl::MutexLock lock(&mu_);
    closed_ = true;
  }
  absl::Status Finish() override { return absl::OkStatus(); }

  // Waits until `n` beats were written or the session was closed; returns whether it was closed.
  bool AwaitBeatsOrClose(int n) {
    absl::MutexLock lock(&mu_);
    auto done = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return beats_ >= n || closed_; };
    mu_.Await(absl::Condition(&done));
    return closed_;
  }
  int beats() {
    absl::MutexLock lock(&mu_);
    return beats_;
  }

 private:
  absl::Mutex mu_;
  int beats_ ABSL_GUARDED_BY(mu_) = 0;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
};

TEST(HeartbeatsTest, BeatWhileLoadingAndNeverGiveUpBeforeListening) {
  CountingSession session;
  Heartbeats heartbeats(session, absl::Milliseconds(10), absl::Milliseconds(300), NullLog());
  // 100 beats = 1 s with nothing heard: three timeouts, but the worker is not listening yet
  // (it is loading its shard), so silence does not count.
  EXPECT_FALSE(session.AwaitBeatsOrClose(100));
  EXPECT_FALSE(heartbeats.timed_out());
}

TEST(HeartbeatsTest, OnceListeningASilentCoordinatorEndsTheSession) {
  CountingSession session;
  Heartbeats heartbeats(session, absl::Milliseconds(10), absl::Milliseconds(300), NullLog());
  heartbeats.Listening();
  // Heard on every beat for 100 beats (three timeouts): the session stays.
  for (int n = 1; n <= 100; ++n) {
    ASSERT_FALSE(session.AwaitBeatsOrClose(n));
    heartbeats.Heard();
  }
  // Silence: closed after the timeout.
  EXPECT_TRUE(session.AwaitBeatsOrClose(1 << 30));
  EXPECT_TRUE(heartbeats.timed_out());
}

}  // namespace
}  // namespace mmx::worker
