#include "coordinator/job_store.h"

#include <stdlib.h>

#include <filesystem>
#include <string>

#include <sqlite3.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;

class JobStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/mmx-jobstore-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static v1::SubmitJobRequest TwoPrompts(const std::string& key = "") {
    v1::SubmitJobRequest r;
    r.set_idempotency_key(key);
    r.add_requests()->set_prompt("one");
    r.add_requests()->set_prompt("two");
    return r;
  }
  std::string dir_;
};

TEST_F(JobStoreTest, CreateGetListAndResults) {
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  bool created = false;
  absl::StatusOr<v1::Job> job = (*store)->Create(TwoPrompts(), &created);
  ASSERT_THAT(job, IsOk());
  EXPECT_TRUE(created);
  EXPECT_THAT(job->job_id(), ::testing::StartsWith("job-"));
  EXPECT_EQ(job->state(), v1::JOB_STATE_QUEUED);
  EXPECT_EQ(job->total(), 2);
  EXPECT_EQ(job->completed(), 0);

  v1::JobResult result;
  result.set_index(1);
  result.set_text("two!");
  result.set_finish_reason("length");
  result.add_token_ids(7);
  ASSERT_THAT((*store)->PutResult(job->job_id(), result), IsOk());
  ASSERT_THAT((*store)->SetState(job->job_id(), v1::JOB_STATE_RUNNING), IsOk());
  absl::StatusOr<v1::Job> got = (*store)->Get(job->job_id(), /*with_results=*/true);
  ASSERT_THAT(got, IsOk());
  EXPECT_EQ(got->state(), v1::JOB_STATE_RUNNING);
  EXPECT_EQ(got->completed(), 1);
  ASSERT_EQ(got->results_size(), 1);
  EXPECT_EQ(got->results(0).text(), "two!");
  EXPECT_EQ(got->results(0).token_ids(0), 7);
  absl::StatusOr<v1::SubmitJobRequest> request = (*store)->GetRequest(job->job_id());
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(request->requests(1).prompt(), "two");
  absl::StatusOr<std::vector<int>> ended = (*store)->EndedIndices(job->job_id());
  ASSERT_THAT(ended, IsOk());
  EXPECT_THAT(*ended, ::testing::ElementsAre(1));

  absl::StatusOr<v1::Job> second = (*store)->Create(TwoPrompts(), &created);
  ASSERT_THAT(second, IsOk());
  absl::StatusOr<std::vector<v1::Job>> list = (*store)->List(10);
  ASSERT_THAT(list, IsOk());
  ASSERT_EQ(list->size(), 2u);
  EXPECT_EQ((*list)[0].job_id(), second->job_id());  // newest first
  EXPECT_EQ((*list)[1].completed(), 1);
}

TEST_F(JobStoreTest, IdempotencyKeyReturnsTheSameJob) {
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  bool created = false;
  absl::StatusOr<v1::Job> first = (*store)->Create(TwoPrompts("k1"), &created);
  ASSERT_THAT(first, IsOk());
  EXPECT_TRUE(created);
  absl::StatusOr<v1::Job> again = (*store)->Create(TwoPrompts("k1"), &created);
  ASSERT_THAT(again, IsOk());
  EXPECT_FALSE(created);
  EXPECT_EQ(again->job_id(), first->job_id());
  absl::StatusOr<v1::Job> other = (*store)->Create(TwoPrompts("k2"), &created);
  ASSERT_THAT(other, IsOk());
  EXPECT_NE(other->job_id(), first->job_id());
}

// With API keys a job has an owner: each owner's idempotency keys are its own (another owner's
// replay of a key makes a new job, never returns someone else's), and List filters by owner.
TEST_F(JobStoreTest, OwnersKeepTheirJobsAndIdempotencyKeysApart) {
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  bool created = false;
  absl::StatusOr<v1::Job> alices = (*store)->Create(TwoPrompts("k"), &created, "alice");
  ASSERT_THAT(alices, IsOk());
  EXPECT_EQ(alices->owner(), "alice");
  absl::StatusOr<v1::Job> bobs = (*store)->Create(TwoPrompts("k"), &created, "bob");
  ASSERT_THAT(bobs, IsOk());
  EXPECT_TRUE(created);
  EXPECT_NE(bobs->job_id(), alices->job_id());
  EXPECT_EQ((*store)->Create(TwoPrompts("k"), &created, "alice")->job_id(), alices->job_id());
  const std::string alice = "alice";
  auto listed = (*store)->List(10, &alice);
  ASSERT_THAT(listed, IsOk());
  ASSERT_EQ(listed->size(), 1u);
  EXPECT_EQ((*listed)[0].job_id(), alices->job_id());
  EXPECT_EQ((*store)->List(10)->size(), 2u);
}

// A database written before owners existed opens, its jobs the anonymous owner's.
TEST_F(JobStoreTest, ADatabaseFromBeforeOwnersOpensWithItsJobsUnowned) {
  {
    auto store = JobStore::Open(dir_);
    ASSERT_THAT(store, IsOk());
  }
  // Rebuild the table as the old schema had it, with one job.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ + "/jobs.db").c_str(), &db), SQLITE_OK);
  const char* old_schema =
      "DROP TABLE jobs; CREATE TABLE jobs (job_id TEXT PRIMARY KEY, idempotency_key TEXT UNIQUE, "
      "state INTEGER NOT NULL, total INTEGER NOT NULL, created_ms INTEGER NOT NULL, error TEXT NOT NULL DEFAULT '', "
      "request BLOB NOT NULL); INSERT INTO jobs VALUES ('job-old', NULL, 1, 2, 1, '', x'');";
  ASSERT_EQ(sqlite3_exec(db, old_schema, nullptr, nullptr, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  sqlite3_close(db);
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  auto old = (*store)->Get("job-old", false);
  ASSERT_THAT(old, IsOk());
  EXPECT_EQ(old->owner(), "");
}

TEST_F(JobStoreTest, EverythingSurvivesReopeningAndUnfinishedListsResumableJobs) {
  std::string queued, done;
  {
    auto store = JobStore::Open(dir_);
    ASSERT_THAT(store, IsOk());
    bool created;
    queued = (*store)->Create(TwoPrompts(), &created)->job_id();
    done = (*store)->Create(TwoPrompts("k"), &created)->job_id();
    v1::JobResult r;
    r.set_index(0);
    r.set_text("kept");
    ASSERT_THAT((*store)->PutResult(done, r), IsOk());
    ASSERT_THAT((*store)->SetState(done, v1::JOB_STATE_SUCCEEDED), IsOk());
  }
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  absl::StatusOr<std::vector<std::string>> unfinished = (*store)->Unfinished();
  ASSERT_THAT(unfinished, IsOk());
  EXPECT_THAT(*unfinished, ::testing::ElementsAre(queued));
  absl::StatusOr<v1::Job> job = (*store)->Get(done, true);
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->state(), v1::JOB_STATE_SUCCEEDED);
  EXPECT_EQ(job->results(0).text(), "kept");
  bool created;
  EXPECT_EQ((*store)->Create(TwoPrompts("k"), &created)->job_id(), done);  // keys persist too
}

TEST_F(JobStoreTest, ARunningJobReopensResumableWithItsRecordedResults) {
  std::string running;
  {
    auto store = JobStore::Open(dir_);
    ASSERT_THAT(store, IsOk());
    bool created;
    v1::SubmitJobRequest three = TwoPrompts();
    *three.add_requests() = three.requests(0);
    running = (*store)->Create(three, &created)->job_id();
    ASSERT_THAT((*store)->SetState(running, v1::JOB_STATE_RUNNING), IsOk());
    v1::JobResult r;
    r.set_index(1);
    r.set_text("second");
    r.set_finish_reason("length");
    ASSERT_THAT((*store)->PutResult(running, r), IsOk());
  }  // closed as a kill would leave it: RUNNING, one of three results in
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  absl::StatusOr<std::vector<std::string>> unfinished = (*store)->Unfinished();
  ASSERT_THAT(unfinished, IsOk());
  EXPECT_THAT(*unfinished, ::testing::ElementsAre(running));
  absl::StatusOr<std::vector<int>> ended = (*store)->EndedIndices(running);
  ASSERT_THAT(ended, IsOk());
  EXPECT_THAT(*ended, ::testing::ElementsAre(1));  // only index 1 is kept; 0 and 2 run again
  absl::StatusOr<v1::Job> job = (*store)->Get(running, true);
  ASSERT_THAT(job, IsOk());
  EXPECT_EQ(job->state(), v1::JOB_STATE_RUNNING);
  ASSERT_EQ(job->results_size(), 1);
  EXPECT_EQ(job->results(0).text(), "second");
  absl::StatusOr<v1::SubmitJobRequest> request = (*store)->GetRequest(running);
  ASSERT_THAT(request, IsOk());
  EXPECT_EQ(request->requests_size(), 3);
}

TEST_F(JobStoreTest, UnknownJobsAndUnwritableDirectoriesAreClearErrors) {
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  EXPECT_THAT((*store)->Get("job-nope", false), StatusIs(absl::StatusCode::kNotFound, HasSubstr("job-nope")));
  EXPECT_THAT((*store)->SetState("job-nope", v1::JOB_STATE_RUNNING), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(JobStore::Open(dir_ + "/does/not/exist"),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("--state-dir")));
}

}  // namespace
}  // namespace mmx::coordinator
