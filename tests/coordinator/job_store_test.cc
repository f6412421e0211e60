#include "coordinator/job_store.h"

#include <stdlib.h>

#include <filesystem>
#include <string>
#include <vector>

#include <sqlite3.h>

#include "absl/strings/numbers.h"
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

// Results come a page at a time in index order, whatever order they ended in: by count and by
// bytes, each page's token leading to the next, every result exactly once, the count whole.
TEST_F(JobStoreTest, ResultsComeInPagesByCountAndBytes) {
  auto store = JobStore::Open(dir_);
  ASSERT_THAT(store, IsOk());
  v1::SubmitJobRequest request;
  for (int i = 0; i < 10; ++i) request.add_requests()->set_prompt("p");
  bool created = false;
  absl::StatusOr<v1::Job> job = (*store)->Create(request, &created);
  ASSERT_THAT(job, IsOk());
  for (int i : {9, 0, 4, 1, 7, 2, 8, 3, 6}) {  // index 5 has not ended
    v1::JobResult r;
    r.set_index(i);
    r.set_text(std::string(100, 'a' + i));
    ASSERT_THAT((*store)->PutResult(job->job_id(), r), IsOk());
  }
  std::vector<int> seen;
  JobStore::ResultsPage page;
  page.max_results = 4;
  int pages = 0;
  for (;; ++pages) {
    absl::StatusOr<v1::Job> got = (*store)->Get(job->job_id(), true, page);
    ASSERT_THAT(got, IsOk());
    EXPECT_EQ(got->completed(), 9);
    EXPECT_LE(got->results_size(), 4);
    for (const v1::JobResult& r : got->results()) seen.push_back(r.index());
    if (got->next_page_token().empty()) break;
    ASSERT_TRUE(absl::SimpleAtoi(got->next_page_token(), &page.from_index));
  }
  EXPECT_EQ(pages, 2);  // 4 + 4 + 1
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3, 4, 6, 7, 8, 9}));

  page = JobStore::ResultsPage{};
  page.max_bytes = 250;  // two results of ~105 bytes fit, the third does not
  absl::StatusOr<v1::Job> by_bytes = (*store)->Get(job->job_id(), true, page);
  ASSERT_THAT(by_bytes, IsOk());
  EXPECT_EQ(by_bytes->results_size(), 2);
  EXPECT_EQ(by_bytes->next_page_token(), "2");
  page.max_bytes = 1;  // a result larger than the limit still comes, alone
  by_bytes = (*store)->Get(job->job_id(), true, page);
  ASSERT_THAT(by_bytes, IsOk());
  EXPECT_EQ(by_bytes->results_size(), 1);
  EXPECT_EQ(by_bytes->next_page_token(), "1");
}

TEST(ResultsPageOfTest, SizesAndTokensAreCheckedWithAClearError) {
  v1::GetJobRequest request;
  absl::StatusOr<JobStore::ResultsPage> page = ResultsPageOf(request);
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->from_index, 0);
  EXPECT_EQ(page->max_results, 1000);
  request.set_page_size(50);
  request.set_page_token("120");
  page = ResultsPageOf(request);
  ASSERT_THAT(page, IsOk());
  EXPECT_EQ(page->from_index, 120);
  EXPECT_EQ(page->max_results, 50);
  request.set_page_token("abc");
  EXPECT_THAT(ResultsPageOf(request), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("next_page_token")));
  request.set_page_token("-3");
  EXPECT_THAT(ResultsPageOf(request), StatusIs(absl::StatusCode::kInvalidArgument));
  request.clear_page_token();
  request.set_page_size(10001);
  EXPECT_THAT(ResultsPageOf(request), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("page_size")));
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
