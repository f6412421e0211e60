// One Generate call read to its end, for integration tests: every response, and what they add
// up to (ids, their logprobs, text, finish reason, usage), with the call's status.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "grpcpp/grpcpp.h"
#include "mmx/v1/inference.grpc.pb.h"

namespace mmx::testing {

struct Streamed {
  std::vector<v1::GenerateResponse> responses;
  std::vector<int32_t> ids;
  std::vector<float> logprobs;
  std::string text;
  std::string finish_reason;
  v1::Usage usage;
  grpc::Status status;
};

inline Streamed StreamGenerate(v1::Inference::Stub& stub, const v1::GenerateRequest& request) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  auto reader = stub.Generate(&context, request);
  Streamed s;
  v1::GenerateResponse r;
  while (reader->Read(&r)) {
    s.responses.push_back(r);
    s.ids.insert(s.ids.end(), r.token_ids().begin(), r.token_ids().end());
    s.logprobs.insert(s.logprobs.end(), r.logprobs().begin(), r.logprobs().end());
    s.text += r.text();
    if (!r.finish_reason().empty()) s.finish_reason = r.finish_reason();
    if (r.has_usage()) s.usage = r.usage();
  }
  s.status = reader->Finish();
  return s;
}

}  // namespace mmx::testing
