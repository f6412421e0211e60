// GenerateStream: one Generate call's response stream (gRPC's callback API: a write reactor).
// The request's updates wake it (Request::SetUpdateListener): each write carries the tokens and
// text that arrived since the last one; the last carries finish_reason and usage, or the call
// ends with the request's error. A client that goes away (or cancels) cancels the request, which
// wakes the scheduler to free its sequence. Nothing here waits or polls: a reaction never blocks,
// and no lock is held while gRPC is called (it may run reactions on the calling thread).
#pragma once

#include <memory>
#include <mutex>

#include "coordinator/metrics.h"
#include "coordinator/request.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/inference.pb.h"

namespace mmx::coordinator {

class GenerateStream final : public grpc::ServerWriteReactor<v1::GenerateResponse>,
                             public std::enable_shared_from_this<GenerateStream> {
 public:
  // Streams `request` (already submitted to the scheduler) to the client. The stream keeps
  // itself alive until gRPC is done with it, and `hold` (a per-key slot, may be null) as long.
  // `metrics` may be null.
  static GenerateStream* Start(std::shared_ptr<Request> request, Metrics* metrics,
                               std::shared_ptr<void> hold = nullptr);

  void OnWriteDone(bool ok) override;
  void OnCancel() override;
  void OnDone() override;

 private:
  GenerateStream(std::shared_ptr<Request> request, Metrics* metrics) : request_(std::move(request)), metrics_(metrics) {}
  // Starts the next write, or finishes the call, unless a write is in flight.
  void Pump();

  const std::shared_ptr<Request> request_;
  Metrics* const metrics_;
  std::shared_ptr<GenerateStream> self_;  // until OnDone
  std::shared_ptr<void> hold_;            // released with the stream

  std::mutex mu_;
  bool writing_ = false;
  bool finished_ = false;
  bool finish_after_write_ = false;
  bool prompt_sent_ = false;  // the prompt's log-probabilities (when asked) went with the first tokens
  grpc::Status final_status_;
  int64_t completion_tokens_ = 0;
  v1::GenerateResponse response_;  // the one being written
};

}  // namespace mmx::coordinator
