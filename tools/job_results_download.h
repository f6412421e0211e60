// `mmx job ID --results FILE.jsonl`: every result of a job as one JSON line each (a JobResult in
// proto3 JSON, index order), streamed with StreamJobResults until the job ends. Resumable: if
// FILE exists, a torn last line is cut off and the download goes on after the last index it
// holds, so a broken download run again ends with every result exactly once.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "mmx/v1/inference.grpc.pb.h"
#include "tools/client_channel.h"

namespace mmx::tools {

// Progress goes to stderr unless `quiet`.
absl::Status DownloadJobResults(v1::Inference::Stub& stub, const ServerConnection& connection,
                                const std::string& job_id, const std::string& path, bool quiet);

}  // namespace mmx::tools
