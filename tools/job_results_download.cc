#include "tools/job_results_download.h"

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/json_util.h"
#include "grpcpp/grpcpp.h"
#include "proto/grpc_status.h"

namespace mmx::tools {
namespace {

// The index after the last whole line of `path` (0 if none), cutting a torn last line off.
// Reads the file from its end, a window that doubles until it holds the last whole line, so a
// resume costs the last line, not the file.
absl::StatusOr<int> ResumeIndex(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return 0;
  const uint64_t size = std::filesystem::file_size(path, ec);
  std::ifstream in(path, std::ios::binary);
  if (ec || !in) return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
  uint64_t whole = 0;  // bytes up to and including the last newline
  std::string last;
  for (uint64_t window = uint64_t{64} << 10;; window *= 2) {
    const uint64_t start = window < size ? size - window : 0;
    std::string tail(size - start, '\0');
    in.seekg(static_cast<std::streamoff>(start));
    if (!in.read(tail.data(), static_cast<std::streamsize>(tail.size()))) {
      return absl::FailedPreconditionError(absl::StrCat("cannot read ", path));
    }
    const size_t end = tail.rfind('\n');
    const size_t before = end == std::string::npos || end == 0 ? std::string::npos : tail.rfind('\n', end - 1);
    if (start > 0 && before == std::string::npos) continue;  // the last whole line begins earlier
    if (end != std::string::npos) {
      const size_t begin = before == std::string::npos ? 0 : before + 1;
      whole = start + end + 1;
      last = tail.substr(begin, end - begin);
    }
    break;
  }
  if (whole < size) {  // a line the last run did not finish
    std::filesystem::resize_file(path, whole, ec);
    if (ec) return absl::FailedPreconditionError(absl::StrCat("cannot cut the torn last line of ", path, ": ", ec.message()));
  }
  if (whole == 0) return 0;
  v1::JobResult result;
  if (!google::protobuf::util::JsonStringToMessage(last, &result).ok() || !result.has_index()) {
    return absl::FailedPreconditionError(
        absl::StrCat(path, " does not end with a job result line: give a new file, or the one a download wrote"));
  }
  return result.index() + 1;
}

}  // namespace

absl::Status DownloadJobResults(v1::Inference::Stub& stub, const ServerConnection& connection,
                                const std::string& job_id, const std::string& path, bool quiet) {
  absl::StatusOr<int> from = ResumeIndex(path);
  if (!from.ok()) return from.status();
  std::FILE* out = std::fopen(path.c_str(), "ab");
  if (out == nullptr) return absl::FailedPreconditionError(absl::StrCat("cannot write ", path));
  grpc::ClientContext context;  // no deadline: following a job lasts as long as the job
  Authorize(&context, connection);
  v1::StreamJobResultsRequest request;
  request.set_job_id(job_id);
  request.set_from_index(*from);
  request.set_follow(true);
  std::unique_ptr<grpc::ClientReader<v1::JobResult>> reader = stub.StreamJobResults(&context, request);
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  v1::JobResult result;
  int written = 0;
  while (reader->Read(&result)) {
    std::string line;
    if (!google::protobuf::util::MessageToJsonString(result, &line, options).ok()) {
      std::fclose(out);
      return absl::InternalError("a result did not convert to JSON");
    }
    line += '\n';
    // One line at a time, flushed: a broken download leaves whole lines (and at most one torn).
    if (std::fwrite(line.data(), 1, line.size(), out) != line.size() || std::fflush(out) != 0) {
      std::fclose(out);
      return absl::DataLossError(absl::StrCat("writing ", path, " failed"));
    }
    ++written;
    if (!quiet && written % 1000 == 0) std::fprintf(stderr, "\r%s: %d results written", path.c_str(), written);
  }
  std::fclose(out);
  if (absl::Status st = FromGrpcStatus(reader->Finish(), connection.server); !st.ok()) {
    return absl::Status(st.code(), absl::StrCat(st.message(), " (", written, " results written to ", path,
                                                "; run the same command again to resume)"));
  }
  if (!quiet) std::fprintf(stderr, "\r%s: %d results written (from index %d)\n", path.c_str(), written, *from);
  return absl::OkStatus();
}

}  // namespace mmx::tools
