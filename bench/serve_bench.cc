// mmx-bench-serve: decode throughput of a running mmx-coord server, as clients see it.
//
//   mmx-bench-serve --server HOST:PORT [--concurrency 1,32] [--prompt-len 16] [--max-tokens 64]
//
// For each concurrency c, c streams run at once, each a distinct random prompt of --prompt-len
// tokens generating --max-tokens tokens (stop ids ignored). Reported: aggregate decode tokens/s,
// the sum over streams of each stream's decode rate (tokens after its first, over the time from
// its first token to its last: prefill and the streams' staggered arrival excluded), and the
// mean time per output token.
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

namespace {

using Clock = std::chrono::steady_clock;

struct StreamResult {
  Clock::time_point first_token, last_token;
  int tokens = 0;
  std::string error;
};

StreamResult RunStream(mmx::v1::Inference::Stub& stub, const std::vector<int32_t>& prompt, int max_tokens) {
  grpc::ClientContext context;
  mmx::v1::GenerateRequest request;
  request.mutable_prompt_token_ids()->Add(prompt.begin(), prompt.end());
  request.mutable_sampling()->set_max_tokens(max_tokens);
  request.mutable_sampling()->set_ignore_eos(true);
  auto reader = stub.Generate(&context, request);
  StreamResult r;
  mmx::v1::GenerateResponse response;
  while (reader->Read(&response)) {
    if (response.token_ids_size() == 0) continue;
    if (r.tokens == 0) r.first_token = Clock::now();
    r.tokens += response.token_ids_size();
    r.last_token = Clock::now();
  }
  grpc::Status st = reader->Finish();
  if (!st.ok()) r.error = st.error_message();
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  std::string server = "127.0.0.1:7070", concurrency_text = "1,32";
  int prompt_len = 16, max_tokens = 64, vocab = 32000;
  CLI::App app{"mmx-bench-serve: decode throughput of a running mmx-coord server"};
  app.add_option("--server", server, "Coordinator HOST:PORT");
  app.add_option("--concurrency", concurrency_text, "Concurrent streams, comma-separated");
  app.add_option("--prompt-len", prompt_len, "Prompt tokens per stream");
  app.add_option("--max-tokens", max_tokens, "Tokens per stream");
  app.add_option("--vocab", vocab, "Prompt ids are drawn from [0, vocab)");
  CLI11_PARSE(app, argc, argv);

  auto stub = mmx::v1::Inference::NewStub(grpc::CreateChannel(server, grpc::InsecureChannelCredentials()));
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
    for (int i = 0; i < c; ++i) threads.emplace_back([&, i] { results[i] = RunStream(*stub, prompts[i], max_tokens); });
    for (auto& t : threads) t.join();
    double tps = 0, per_token_ms = 0;
    for (const StreamResult& r : results) {
      if (!r.error.empty()) {
        std::fprintf(stderr, "mmx-bench-serve: error: %s\n", r.error.c_str());
        return 1;
      }
      const double ms = std::chrono::duration<double, std::milli>(r.last_token - r.first_token).count();
      const double ms_per_token = ms / std::max(1, r.tokens - 1);
      per_token_ms += ms_per_token;
      if (ms_per_token > 0) tps += 1e3 / ms_per_token;
    }
    std::printf("| %d | %.2f | %.1f |\n", c, tps, per_token_ms / c);
    std::fflush(stdout);
  }
  return 0;
}
