// ModelSizes against MODEL.md §7's exact counts, and CostModel's memory and time arithmetic on
// layouts written by hand.
#include "plan/cost_model.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plan/layout.h"
#include "plan/model_sizes.h"
#include "tests/plan/plan_test_util.h"

namespace mmx::plan {
namespace {

using testing::Homogeneous;
using testing::RealConfig;
using testing::TinyConfig;

TEST(ModelSizesTest, RealModelMatchesModelMdSection7) {
  const ModelSizes s = ComputeModelSizes(RealConfig());
  EXPECT_EQ(s.total_params, 456'089'655'296);
  EXPECT_EQ(s.expert_params, 169'869'312);
  EXPECT_EQ(s.expert_params * 32, 5'435'817'984);
  EXPECT_EQ(s.all_expert_params(), 434'865'438'720);
  EXPECT_EQ(s.attention_params[0], 251'666'432);  // lightning: qkv + gate + out + norm
  EXPECT_EQ(s.attention_params[7], 113'246'208);  // softmax: q + k + v + o
  EXPECT_EQ(s.SumOver(s.attention_params, false), 17'616'650'240);
  EXPECT_EQ(s.SumOver(s.attention_params, true), 1'132'462'080);
  EXPECT_EQ(s.router_params[0], 196'608);
  EXPECT_EQ(s.SumOver(s.router_params, false) + s.SumOver(s.router_params, true), 15'728'640);
  EXPECT_EQ(s.SumOver(s.norm_params, false) + s.SumOver(s.norm_params, true) + s.final_norm_params, 989'184);
  EXPECT_EQ(s.embedding_params, 1'229'193'216);
  EXPECT_EQ(s.lm_head_params, 1'229'193'216);
  EXPECT_EQ(s.ActiveParamsPerToken(), 45'944'920'064);
  EXPECT_EQ(s.num_softmax_layers(), 10);
  // int8: 62,914,560 per-output-channel scales in all, as bf16.
  EXPECT_EQ(s.expert_output_channels * s.num_expert_pairs(), 62'914'560);
  EXPECT_EQ(s.ExpertBytes(true) * s.num_expert_pairs(), 434'865'438'720 + 2 * 62'914'560);
  EXPECT_EQ(s.ExpertBytes(false), 2 * 169'869'312);
  // State: 40,960 B of softmax KV per token in bf16 (81,920 in fp32), 280 MiB of lightning state
  // per sequence.
  int64_t kv = 0, kv_fp32 = 0, lightning = 0;
  for (int l = 0; l < s.num_layers; ++l) {
    kv += s.KvBytesPerToken(l, DType::kBF16);
    kv_fp32 += s.KvBytesPerToken(l, DType::kF32);
    lightning += s.LightningStateBytes(l);
  }
  EXPECT_EQ(kv, 40'960);
  EXPECT_EQ(kv_fp32, 81'920);
  EXPECT_EQ(lightning, 293'601'280);
}

// A layout giving every role to worker 0.
Layout AllOnOne(const ModelSizes& s, size_t num_workers) {
  Layout layout = Layout::Empty(s.num_layers, s.num_experts, num_workers);
  WorkerRoles& w = layout.workers[0];
  w.embedding = w.lm_head = true;
  w.attention = LayerRange{0, s.num_layers};
  std::fill(w.experts.begin(), w.experts.end(), 1);
  return layout;
}

TEST(CostModelTest, MemoryCountsWeightsStateAndWorkspaceByRole) {
  const ModelSizes s = ComputeModelSizes(TinyConfig());
  ServingSpec serving;
  serving.max_context = 1000;
  serving.max_sequences = 3;
  const CostModel cost(s, Homogeneous(2, 8, 100, serving));
  const std::vector<WorkerMemory> m = cost.Memory(AllOnOne(s, 2));
  int64_t attention = 0, kv = 0, lightning = 0;
  for (int l = 0; l < s.num_layers; ++l) {
    attention += s.StageLayerBytes(l);
    kv += 3 * 1024 * s.KvBytesPerToken(l, DType::kBF16);  // 1000 positions: 16 blocks of 64
    lightning += 3 * s.LightningStateBytes(l);
  }
  EXPECT_EQ(m[0].attention, attention);
  EXPECT_EQ(m[0].kv_cache, kv);
  EXPECT_EQ(m[0].lightning_state, lightning);
  EXPECT_EQ(m[0].experts, s.num_expert_pairs() * s.ExpertBytes(false));
  EXPECT_EQ(m[0].embedding_tail, s.EmbeddingBytes() + s.TailBytes());
  EXPECT_EQ(m[0].workspace, cost.StageWorkspaceBytes() + cost.TailWorkspaceBytes() + cost.HostWorkspaceBytes(s.num_experts));
  EXPECT_EQ(m[0].usable, static_cast<int64_t>(8 * kGiB * 0.95) - kCudaReserveBytes);
  EXPECT_EQ(m[1].total(), 0);
  EXPECT_TRUE(m[0].fits());
}

TEST(CostModelTest, KvCacheScalesWithContextAndSequences) {
  const ModelSizes s = ComputeModelSizes(RealConfig());
  ServingSpec a, b;
  a.max_context = 4096;
  a.max_sequences = 4;
  b.max_context = 8192;
  b.max_sequences = 8;
  const Layout layout = AllOnOne(s, 1);
  const int64_t kv_a = CostModel(s, Homogeneous(1, 80, 3350, a)).Memory(layout)[0].kv_cache;
  const int64_t kv_b = CostModel(s, Homogeneous(1, 80, 3350, b)).Memory(layout)[0].kv_cache;
  EXPECT_EQ(kv_a, 40'960 * 4096 * 4);
  EXPECT_EQ(kv_b, 4 * kv_a);
}

TEST(CostModelTest, Int8HalvesExpertBytesPlusScales) {
  const ModelSizes s = ComputeModelSizes(TinyConfig());
  ServingSpec int8;
  int8.expert_dtype = "int8";
  const Layout layout = AllOnOne(s, 1);
  const int64_t bf16 = CostModel(s, Homogeneous(1, 8, 100)).Memory(layout)[0].experts;
  const int64_t q8 = CostModel(s, Homogeneous(1, 8, 100, int8)).Memory(layout)[0].experts;
  EXPECT_EQ(bf16, s.num_expert_pairs() * s.expert_params * 2);
  EXPECT_EQ(q8, s.num_expert_pairs() * (s.expert_params + 2 * s.expert_output_channels));
}

TEST(CostModelTest, MemoryBoundDecodeScalesWithBandwidth) {
  // Huge compute and network, no latency: a one-worker decode step is bandwidth alone.
  const ModelSizes s = ComputeModelSizes(RealConfig());
  auto step = [&](double bandwidth) {
    ClusterSpec c = Homogeneous(1, 4096, bandwidth);
    c.workers[0].tflops = 1e9;
    c.workers[0].network_gbps = 1e9;
    c.workers[0].network_latency_us = 0;
    return CostModel(s, c).Predict(AllOnOne(s, 1));
  };
  const Prediction slow = step(1000), fast = step(2000);
  EXPECT_NEAR(slow.step_s / fast.step_s, 2.0, 1e-9);
  EXPECT_EQ(slow.bottleneck_resource, "memory");
  EXPECT_NEAR(slow.decode.network_s, 0, 1e-12);
  EXPECT_NEAR(slow.tokens_per_s, 32 / slow.step_s, 1e-9);
  // One worker does everything, so its busy time is the whole step.
  EXPECT_NEAR(slow.decode_time[0].busy_s, slow.step_s, 1e-9 * slow.step_s);
  // The KV cache at 128K x 32 sequences alone takes 171.8 GB / (1000 GB/s * efficiency).
  EXPECT_GT(slow.step_s, 32.0 * 131072 * 40960 / (1000e9 * kMemoryEfficiency));
  EXPECT_GT(slow.ttft_32k_s, slow.ttft_1k_s);
}

TEST(CostModelTest, RemoteExpertsAddNetworkTimeAndSplitTheWork) {
  const ModelSizes s = ComputeModelSizes(TinyConfig());
  ClusterSpec c = Homogeneous(2, 8, 100);
  const CostModel cost(s, c);
  Layout local = AllOnOne(s, 2);
  Layout split = local;
  // Worker 1 takes the odd experts: half the expert bytes each, in parallel, plus transfers.
  for (int l = 0; l < s.num_layers; ++l) {
    for (int e = 1; e < s.num_experts; e += 2) {
      split.workers[0].experts[l * s.num_experts + e] = 0;
      split.workers[1].experts[l * s.num_experts + e] = 1;
    }
  }
  const Prediction a = cost.Predict(local), b = cost.Predict(split);
  EXPECT_GT(b.decode.network_s, a.decode.network_s);
  EXPECT_LT(b.decode.experts_s, a.decode.experts_s);
  EXPECT_EQ(b.active_experts[0], s.num_expert_pairs() / 2);
  EXPECT_EQ(b.active_experts[1], s.num_expert_pairs() / 2);
  EXPECT_GT(b.decode_time[1].network_s, 0);

  // Activations as bf16 on the wire: the same transfers at half the bytes (no latency here, so
  // the network term halves exactly); nothing else changes.
  ClusterSpec no_latency = c;
  for (WorkerSpec& w : no_latency.workers) w.network_latency_us = 0;
  ClusterSpec bf16 = no_latency;
  bf16.serving.wire_dtype = DType::kBF16;
  const Prediction fp32_wire = CostModel(s, no_latency).Predict(split), bf16_wire = CostModel(s, bf16).Predict(split);
  EXPECT_GT(fp32_wire.decode.network_s, 0);
  EXPECT_NEAR(bf16_wire.decode.network_s, fp32_wire.decode.network_s / 2, 1e-12);
  EXPECT_EQ(bf16_wire.decode.experts_s, fp32_wire.decode.experts_s);
  EXPECT_EQ(bf16_wire.decode.attention_s, fp32_wire.decode.attention_s);
}

TEST(CostModelTest, TokensPerDollarNeedsEveryPrice) {
  const ModelSizes s = ComputeModelSizes(TinyConfig());
  ClusterSpec c = Homogeneous(2, 8, 100);
  c.workers[0].price_per_hour = 2.0;
  EXPECT_FALSE(CostModel(s, c).Predict(AllOnOne(s, 2)).tokens_per_dollar.has_value());
  c.workers[1].price_per_hour = 1.0;
  const Prediction p = CostModel(s, c).Predict(AllOnOne(s, 2));
  ASSERT_TRUE(p.tokens_per_dollar.has_value());
  EXPECT_NEAR(*p.tokens_per_dollar, p.tokens_per_s * 3600 / 3.0, 1e-6);
}

// Two pipeline stages, each with the experts of its own layers.
Layout Pipeline(const ModelSizes& s) {
  Layout layout = Layout::Empty(s.num_layers, s.num_experts, 2);
  const int half = s.num_layers / 2;
  layout.workers[0].embedding = true;
  layout.workers[0].attention = LayerRange{0, half};
  layout.workers[1].attention = LayerRange{half, s.num_layers};
  layout.workers[1].lm_head = true;
  for (int l = 0; l < s.num_layers; ++l) {
    for (int e = 0; e < s.num_experts; ++e) layout.workers[l < half ? 0 : 1].experts[l * s.num_experts + e] = 1;
  }
  return layout;
}

// Compute-bound workers (slow FLOPs, fast memory and network): a step's cost is proportional to
// its sequences.
ClusterSpec ComputeBound(int workers, ServingSpec serving) {
  ClusterSpec c = Homogeneous(workers, 4096, 1e6, serving);
  for (WorkerSpec& w : c.workers) {
    w.tflops = 0.01;
    w.network_gbps = 1e9;
    w.network_latency_us = 0;
  }
  return c;
}

TEST(CostModelTest, TwoStagesWithTwoStepsInFlightEachStayBusyAndDoubleTheRate) {
  const ModelSizes s = ComputeModelSizes(TinyConfig());
  ServingSpec serving;
  serving.max_sequences = 16;
  serving.max_context = 64;
  const Prediction p = CostModel(s, ComputeBound(2, serving)).Predict(Pipeline(s));
  ASSERT_GE(p.in_flight.size(), 4u);
  const InFlight& one = p.in_flight[0];
  const InFlight& two = p.in_flight[1];
  EXPECT_NEAR(one.token_s, p.step_s, 1e-12);
  EXPECT_NEAR(one.tokens_per_s, 16 / p.step_s, 1e-9);
  // A wave of 8 takes about half the step of 16; each stage is busy about half of that.
  EXPECT_NEAR(two.step_s / one.step_s, 0.5, 0.05);
  EXPECT_NEAR(two.busiest_s / two.step_s, 0.5, 0.05);
  EXPECT_NEAR(two.tokens_per_s / one.tokens_per_s, 2.0, 0.1);
  // Four waves keep the stages no busier: no better than two, so two is the recommendation.
  EXPECT_LT(p.in_flight[3].tokens_per_s, two.tokens_per_s * 1.05);
  EXPECT_EQ(p.served.steps, 2);
  EXPECT_NEAR(p.tokens_per_s, two.tokens_per_s, 1e-9);
}

TEST(CostModelTest, OneWorkerHasNothingToOverlapAndTheSpecsCountIsServed) {
  const ModelSizes s = ComputeModelSizes(TinyConfig());
  ServingSpec serving;
  serving.max_sequences = 16;
  serving.max_context = 64;
  const Prediction alone = CostModel(s, ComputeBound(1, serving)).Predict(AllOnOne(s, 1));
  EXPECT_EQ(alone.served.steps, 1);
  EXPECT_LE(alone.in_flight[1].tokens_per_s, alone.in_flight[0].tokens_per_s * 1.05);
  serving.steps_in_flight = 3;
  const Prediction asked = CostModel(s, ComputeBound(2, serving)).Predict(Pipeline(s));
  EXPECT_EQ(asked.served.steps, 3);
  EXPECT_EQ(asked.served.sequences_per_wave, 6);
  EXPECT_NEAR(asked.tokens_per_s, asked.in_flight[2].tokens_per_s, 1e-9);
}

TEST(CostModelTest, WhenEveryStepReadsAllTheWeightsWavesGainLittle) {
  // Memory-bound, the weights far above the state (the real model: 10.9 GB of experts per layer,
  // each read with probability 1 - (30/32)^64 = 0.98 by a wave of 64): a wave costs nearly a whole
  // step. (At 32 sequences a wave of 16 reads 64% of the experts against 87%: waves do pay there.)
  const ModelSizes s = ComputeModelSizes(RealConfig());
  ServingSpec serving;
  serving.max_sequences = 128;
  serving.max_context = 64;
  ClusterSpec c = Homogeneous(2, 4096, 1, serving);
  for (WorkerSpec& w : c.workers) {
    w.tflops = 1e6;
    w.network_gbps = 1e9;
    w.network_latency_us = 0;
  }
  // What two waves gain is the state traffic one stage overlaps with the other's, and the few
  // experts a wave of 64 does not touch.
  const Prediction p = CostModel(s, c).Predict(Pipeline(s));
  EXPECT_LT(p.in_flight[1].tokens_per_s / p.in_flight[0].tokens_per_s, 1.1);
  EXPECT_LE(p.served.steps, 2);
}

TEST(LayoutTest, ActiveOwnersPreferTheColocatedHolderThenTheLeastLoaded) {
  Layout layout = Layout::Empty(2, 2, 3);
  layout.workers[1].attention = LayerRange{0, 1};
  layout.workers[2].attention = LayerRange{1, 2};
  for (WorkerRoles& w : layout.workers) std::fill(w.experts.begin(), w.experts.end(), 1);
  // Layer 0: worker 1 is its stage. Layer 1: worker 2 is.
  EXPECT_EQ(layout.ActiveOwners(), (std::vector<int>{1, 1, 2, 2}));
  layout.workers[2].attention.reset();
  layout.workers[1].attention = LayerRange{0, 2};
  layout.workers[1].experts = {1, 1, 0, 0};
  // Layer 1 is not held by its stage: worker 0 (no load yet) then worker 2 (fewer than 0).
  EXPECT_EQ(layout.ActiveOwners(), (std::vector<int>{1, 1, 0, 2}));
}

}  // namespace
}  // namespace mmx::plan
