#include "coordinator/utf8_fields.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "mmx/v1/inference.pb.h"
#include "tests/testing/status_matchers.h"

namespace mmx::coordinator {
namespace {

using ::mmx::testing::IsOk;
using ::mmx::testing::StatusIs;
using ::testing::HasSubstr;
using ::testing::Not;

const std::string kBad = std::string("ok \xC3(", 5);  // a lead byte without its continuation

TEST(Utf8FieldsTest, ValidTextOfEveryKindPasses) {
  v1::GenerateRequest request;
  request.set_prompt("caf\u00E9 \U0001F600 \u4E2D");
  request.add_messages()->set_content(std::string("nul \0 inside", 12));
  request.mutable_sampling()->add_stop("\n\n");
  EXPECT_THAT(CheckUtf8Fields(request), IsOk());
  EXPECT_THAT(CheckUtf8Fields(v1::GenerateRequest()), IsOk());
}

TEST(Utf8FieldsTest, NamesTheFieldByItsPathAndTheOffsetNotTheValue) {
  v1::GenerateRequest prompt;
  prompt.set_prompt(kBad);
  EXPECT_THAT(CheckUtf8Fields(prompt),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("prompt is not valid UTF-8 (bad byte at offset 3)")));

  v1::GenerateRequest chat;
  chat.add_messages()->set_content("fine");
  chat.add_messages()->set_role(kBad);
  EXPECT_THAT(CheckUtf8Fields(chat), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("messages[1].role is not valid UTF-8")));

  v1::SubmitJobRequest job;
  job.add_requests()->set_prompt("fine");
  job.add_requests()->mutable_sampling()->add_stop("fine");
  job.mutable_requests(1)->mutable_sampling()->add_stop(kBad);
  const absl::Status st = CheckUtf8Fields(job);
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument,
                           HasSubstr("requests[1].sampling.stop[1] is not valid UTF-8")));
  EXPECT_THAT(std::string(st.message()), Not(HasSubstr("\xC3")));
}

TEST(Utf8FieldsTest, SurrogatesAndOverlongFormsAreInvalid) {
  for (const std::string& bad : {std::string("\xED\xA0\x80"), std::string("\xC0\xAF"),
                                 std::string("\xF4\x90\x80\x80")}) {
    v1::GetJobRequest request;
    request.set_job_id(bad);
    EXPECT_THAT(CheckUtf8Fields(request),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("job_id is not valid UTF-8")));
  }
}

}  // namespace
}  // namespace mmx::coordinator
