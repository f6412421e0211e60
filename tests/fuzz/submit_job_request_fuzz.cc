// A client's SubmitJobRequest: parsed, UTF-8 checked, and each of its requests validated as the
// job runner validates them before it stores the job.
#include <cstddef>
#include <cstdint>

#include "coordinator/request_factory.h"
#include "coordinator/utf8_fields.h"
#include "tests/fuzz/request_context.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mmx::v1::SubmitJobRequest job;
  if (!job.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!mmx::coordinator::CheckUtf8Fields(job).ok()) return 0;
  for (const mmx::v1::GenerateRequest& request : job.requests()) (void)mmx::fuzz::Factory().Validate(request);
  return 0;
}
