// Runs a prompt layer by layer through one StageCompute, with the worker's own decoder-layer
// halves (worker/decoder_layer.h, every expert local), keeping what the golden set's debug files
// hold: the embeddings, every layer's output, every layer's router logits, and the final norm's
// output. CheckLayerTrace holds a backend to them. The KV cache is fp32 (golden-exact).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "base/status_macros.h"
#include "gtest/gtest.h"
#include "model/stage_compute.h"
#include "tests/testing/golden.h"
#include "worker/decoder_layer.h"

namespace mmx::testing {

struct LayerTrace {
  std::vector<std::vector<float>> hidden;         // [L + 1]: [0] embeddings, [l] layer l-1's output, each [n, H]
  std::vector<std::vector<float>> router_logits;  // [L], each [n, E]
  std::vector<float> final_norm;                  // [n, H]: the final norm of the last layer's output
};

inline absl::StatusOr<LayerTrace> TraceLayers(model::StageCompute& compute, const model::ModelConfig& c,
                                              const std::vector<int32_t>& prompt) {
  const int64_t n = static_cast<int64_t>(prompt.size());
  MMX_ASSIGN_OR_RETURN(std::unique_ptr<model::SequenceState> state, compute.NewSequence(0, c.num_hidden_layers, DType::kF32));
  model::BatchLayout batch;
  batch.Add(n, 0, state.get());
  LayerTrace trace;
  worker::LayerState layer;
  layer.x.resize(n * c.hidden_size);
  MMX_RETURN_IF_ERROR(compute.Embed(prompt.data(), n, layer.x.data()));
  trace.hidden.emplace_back(layer.x.begin(), layer.x.end());
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    layer.routing.keep_logits = true;
    MMX_RETURN_IF_ERROR(worker::BeginLayer(compute, l, batch, 0, worker::AllExpertsLocal(0), nullptr, layer));
    trace.router_logits.push_back(layer.routing.logits);
    MMX_RETURN_IF_ERROR(worker::EndLayer(compute, c, l, 0, nullptr, layer));
    trace.hidden.emplace_back(layer.x.begin(), layer.x.end());
  }
  std::vector<int64_t> rows(n);
  for (int64_t i = 0; i < n; ++i) rows[i] = i;
  trace.final_norm.resize(n * c.hidden_size);
  MMX_RETURN_IF_ERROR(compute.FinalNorm(layer.x.data(), rows, trace.final_norm.data()));
  return trace;
}

// The golden debug files of p5 and p64: hidden_states [L + 1, n, H] ([L] is the final norm's
// output; the last layer's own output is not stored) and router_logits [L, n, E].
inline void CheckLayerTrace(model::StageCompute& compute, const model::ModelConfig& c, float tolerance) {
  const int64_t H = c.hidden_size, E = c.num_local_experts, L = c.num_hidden_layers;
  for (const std::string name : {"p5", "p64"}) {
    auto debug = ReadGoldenFile("debug_" + name + ".safetensors");
    const auto& hidden = debug.at("hidden_states").f32;
    const auto& router = debug.at("router_logits").f32;
    const std::vector<int32_t> prompt = GoldenPrompt(name);
    const int64_t n = static_cast<int64_t>(prompt.size());
    absl::StatusOr<LayerTrace> trace = TraceLayers(compute, c, prompt);
    ASSERT_TRUE(trace.ok()) << trace.status();
    ASSERT_EQ(hidden.size(), static_cast<size_t>((L + 1) * n * H)) << name;
    for (int64_t l = 0; l < L; ++l) {
      EXPECT_LE(MaxAbsDiff(trace->hidden[l].data(), hidden.data() + l * n * H, n * H), tolerance)
          << name << (l == 0 ? " embeddings" : " after layer " + std::to_string(l - 1));
      ASSERT_EQ(trace->router_logits[l].size(), static_cast<size_t>(n * E)) << name << " layer " << l;
      EXPECT_LE(MaxAbsDiff(trace->router_logits[l].data(), router.data() + l * n * E, n * E), tolerance)
          << name << " router logits of layer " << l;
    }
    EXPECT_LE(MaxAbsDiff(trace->final_norm.data(), hidden.data() + L * n * H, n * H), tolerance)
        << name << " final norm";
  }
}

}  // namespace mmx::testing
