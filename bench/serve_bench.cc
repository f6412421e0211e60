// mmx-bench-serve: decode throughput of a running mmx-coord server, as clients see it.
//
//   mmx-bench-serve --server HOST:PORT [--concurrency 1,32] [--prompt-len 16] [--max-tokens 64]
//                   [--temperature T --top-p P --top-k K]
//
// For each concurrency c, c streams run at once, each a distinct random prompt of --prompt-len
// tokens generating --max-tokens tokens (stop ids ignored). Reported: aggregate decode tokens/s
// in the steady state, i.e. the tokens all streams received between the moment the last stream
// got its first token (every prompt is prefilled; from then on each step decodes all c streams)
// and the moment the first stream finished, over that window's length; and the mean time per
// output token over the same window. Counting from each stream's own first token instead would
// charge the early streams with the prefill of the ones that arrived after them.
#include <atomic>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "grpcpp/grpcpp.h"
#include "mmx/v1/inference.grpc.pb.h"
#include "proto/tls_credentials.h"

namespace {

using Clock = std::chrono::steady_clock;

struct StreamResult {
  std::vector<Clock::time_point> token_times;  // one per token received
  std::string error;
};

StreamResult RunStream(mmx::v1::Inference::Stub& stub, const std::vector<int32_t>& prompt,
                       const mmx::v1::SamplingParams& sampling) {
  grpc::ClientContext context;
  mmx::v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
  *request.mutable_sampling() = sampling;
  auto reader = stub.Generate(&context, request);
  StreamResult r;
  mmx::v1::GenerateResponse response;
  while (reader->Read(&response)) {
    const Clock::time_point now = Clock::now();
    for (int i = 0; i < response.token_ids_size(); ++i) r.token_times.push_back(now);
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) r.error = st.error_message();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1:7070", concurrency_text = "1,32";
  int prompt_len = 16, max_tokens = 64, vocab = 32000, top_k = 0;
  float temperature = 0.f, top_p = 1.f;
  CLI::App app{"mmx-bench-serve: decode throughput of a running mmx-coord server"};
  app.add_option("--server", server, "Coordinator HOST:PORT");
  app.add_option("--concurrency", concurrency_text, "Concurrent streams, comma-separated");
  app.add_option("--prompt-len", prompt_len, "Prompt tokens per stream");
  app.add_option("--max-tokens", max_tokens, "Tokens per stream");
  app.add_option("--vocab", vocab, "Prompt ids are drawn from [0, vocab)");
  app.add_option("--temperature", temperature, "Sampling temperature (0 = greedy)");
  app.add_option("--top-p", top_p, "Nucleus mass (1 = off)");
  app.add_option("--top-k", top_k, "Keep the k most likely (0 = off)");
  mmx::rpc::ClientTlsFiles tls;
  app.add_option("--tls-ca", tls.ca, "Verify the coordinator's TLS certificate against this PEM CA (TLS on)");
  CLI11_PARSE(app, argc, argv);

  absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials = mmx::rpc::MakeChannelCredentials(tls);
  if (!credentials.ok()) {
    std::fprintf(stderr, "mmx-bench-serve: error: %s\n", std::string(credentials.status().message()).c_str());
    return 2;
  }
  auto stub = mmx::v1::Inference::NewStub(grpc::CreateChannel(server, *credentials));
  std::mt19937 rng(7);
  std::printf("| streams | decode tokens/s (aggregate) | ms per output token (per stream) |\n|---|---|---|\n");
  for (absl::string_view part : absl::StrSplit(concurrency_text, ',')) {
    int c = 0;
    if (!absl::SimpleAtoi(part, &c) || c < 1) {
      std::fprintf(stderr, "mmx-bench-serve: error: bad concurrency '%s'\n", std::string(part).c_str());
      return 2;
    }
    std::vector<std::vector<int32_t>> prompts(c);
    for (auto& p : prompts) {
      for (int t = 0; t < prompt_len; ++t) p.push_back(static_cast<int32_t>(rng() % vocab));
    }
    std::vector<StreamResult> results(c);
    std::vector<std::thread> threads;
    for (int i = 0; i < c; ++i) {
      mmx::v1::SamplingParams sampling;
      sampling.set_max_tokens(max_tokens);
      sampling.set_ignore_eos(true);
      sampling.set_temperature(temperature);
      sampling.set_top_p(top_p);
      sampling.set_top_k(top_k);
      sampling.set_seed(1000 + i);
      threads.emplace_back([&, i, sampling] { results[i] = RunStream(*stub, prompts[i], sampling); });
    }
    for (auto& t : threads) t.join();
    Clock::time_point window_begin = Clock::time_point::min(), window_end = Clock::time_point::max();
    for (const StreamResult& r : results) {
      if (!r.error.empty() || r.token_times.size() < 2) {
        std::fprintf(stderr, "mmx-bench-serve: error: %s\n",
                     r.error.empty() ? "a stream returned fewer than 2 tokens" : r.error.c_str());
        return 1;
      }
      window_begin = std::max(window_begin, r.token_times.front());
      window_end = std::min(window_end, r.token_times.back());
    }
    // Tokens strictly after the window opens: the first token of the last stream is its prefill's.
    int64_t tokens = 0;
    for (const StreamResult& r : results) {
      for (const Clock::time_point& t : r.token_times) tokens += t > window_begin && t <= window_end;
    }
    const double ms = std::chrono::duration<double, std::milli>(window_end - window_begin).count();
    if (tokens == 0 || ms <= 0) {
      std::fprintf(stderr, "mmx-bench-serve: error: no steady-state window (raise --max-tokens)\n");
      return 1;
    }
    const double tps = tokens * 1e3 / ms;
    std::printf("| %d | %.2f | %.1f |\n", c, tps, ms * c / tokens);
    std::fflush(stdout);
  }
  return 0;
}
