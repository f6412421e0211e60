#include "coordinator/inference_service.h"

#include "absl/strings/str_cat.h"
#include "model/generate_local.h"

namespace mmx::coordinator {

grpc::Status ToGrpcStatus(const absl::Status& status) {
  if (status.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(status.code()), std::string(status.message()));
}

absl::StatusOr<Request::Params> ValidateGenerate(const v1::GenerateRequest& request,
                                                 const model::ModelConfig& config) {
  Request::Params p;
  if (!request.prompt().empty() && request.prompt_token_ids_size() == 0) {
    return absl::InvalidArgumentError("text prompts need the tokenizer, which this server does not have yet; "
                                      "send prompt_token_ids");
  }
  p.prompt.assign(request.prompt_token_ids().begin(), request.prompt_token_ids().end());
  const v1::SamplingParams& s = request.sampling();
  p.sampling.temperature = s.temperature();
  p.sampling.top_p = s.top_p() == 0.f ? 1.f : s.top_p();
  p.sampling.top_k = s.top_k();
  p.sampling.seed = s.seed();
  p.max_tokens = s.max_tokens();
  p.logprobs = s.logprobs();
  if (p.logprobs < 0 || p.logprobs > 20) {
    return absl::InvalidArgumentError(absl::StrCat("sampling.logprobs must be in [0, 20], got ", p.logprobs));
  }
  model::GenerateOptions options;
  options.max_tokens = p.max_tokens;
  options.sampling = p.sampling;
  absl::Status st = model::ValidateGenerateRequest(config, {p.prompt}, options);
  if (!st.ok()) return absl::InvalidArgumentError(absl::StrCat("sampling/prompt: ", st.message()));
  if (!s.ignore_eos()) p.stop_ids = model::DefaultEosIds(config);
  for (int32_t id : s.stop_token_ids()) p.stop_ids.push_back(id);
  return p;
}

grpc::Status InferenceService::Generate(grpc::ServerContext* context, const v1::GenerateRequest* request,
                                        grpc::ServerWriter<v1::GenerateResponse>* writer) {
  absl::StatusOr<Request::Params> params = ValidateGenerate(*request, cluster_->config());
  if (!params.ok()) return ToGrpcStatus(params.status());
  if (!cluster_->ready()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, cluster_->NotReadyReason());

  auto r = std::make_shared<Request>(next_request_++, *std::move(params));
  if (absl::Status st = scheduler_->Submit(r); !st.ok()) return ToGrpcStatus(st);
  const bool want_logprobs = r->params().logprobs > 0;
  std::vector<TokenEvent> tokens, rest;
  while (true) {
    r->Next(&tokens, absl::Milliseconds(200));
    if (context->IsCancelled()) {
      r->Cancel();
      return grpc::Status(grpc::StatusCode::CANCELLED, "client cancelled");
    }
    // Once done, no event is added any more: drain what arrived since the last Next.
    const bool done = r->done();
    if (done) {
      r->Next(&rest, absl::ZeroDuration());
      tokens.insert(tokens.end(), rest.begin(), rest.end());
    }
    if (tokens.empty() && !done) continue;
    v1::GenerateResponse response;
    for (const TokenEvent& t : tokens) {
      response.add_token_ids(t.token_id);
      response.add_logprobs(t.logprob);
      if (want_logprobs) {
        v1::TopLogprobs* top = response.add_top_logprobs();
        top->mutable_token_ids()->Add(t.top_ids.begin(), t.top_ids.end());
        top->mutable_logprobs()->Add(t.top_logprobs.begin(), t.top_logprobs.end());
      }
    }
    const absl::Status final_status = done ? r->final_status() : absl::OkStatus();
    if (done && final_status.ok()) response.set_finish_reason(r->finish_reason());
    if ((response.token_ids_size() > 0 || done) && !(done && !final_status.ok() && tokens.empty())) {
      if (!writer->Write(response)) {
        r->Cancel();
        return grpc::Status(grpc::StatusCode::CANCELLED, "client went away");
      }
    }
    if (done) return ToGrpcStatus(final_status);
  }
}

grpc::Status InferenceService::GetClusterStatus(grpc::ServerContext*, const v1::GetClusterStatusRequest*,
                                                v1::ClusterStatus* response) {
  *response = cluster_->Status();
  response->set_running_requests(scheduler_->running());
  return grpc::Status::OK;
}

}  // namespace mmx::coordinator
