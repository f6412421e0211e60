// One figure for a sequence's state, from planning to serving: what the planner counts for a
// sequence at max_context, what admission reserves for one of that many positions, and what a
// worker's SequenceState holds after a real prefill of them on the CPU StageCompute (the KV
// blocks the attention block appended), for bf16 and fp32 KV caches, on the golden model.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "coordinator/state_budget.h"
#include "gtest/gtest.h"
#include "model/state_bytes.h"
#include "plan/cost_model.h"
#include "plan/model_sizes.h"
#include "tests/testing/golden.h"
#include "tests/testing/whole_model.h"
#include "worker/decoder_layer.h"

namespace mmx {
namespace {

// Bytes a worker's sequence state holds after prefilling `prompt` through every layer.
int64_t HeldAfterPrefill(const worker::LoadedShard& shard, const std::vector<int32_t>& prompt, DType kv_dtype) {
  const model::ModelConfig& c = shard.config();
  const int64_t n = static_cast<int64_t>(prompt.size());
  auto state = shard.compute->NewSequence(0, c.num_hidden_layers, kv_dtype);
  EXPECT_TRUE(state.ok()) << state.status();
  if (!state.ok()) return -1;
  model::BatchLayout batch;
  batch.Add(n, 0, state->get());
  worker::LayerState layer;
  layer.x.resize(n * c.hidden_size);
  EXPECT_TRUE(shard.compute->Embed(prompt.data(), n, layer.x.data()).ok());
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    EXPECT_TRUE(worker::BeginLayer(*shard.compute, l, batch, 0, worker::AllExpertsLocal(0), nullptr, layer).ok());
    EXPECT_TRUE(worker::EndLayer(*shard.compute, c, l, 0, nullptr, layer).ok());
  }
  EXPECT_EQ((*state)->length(), n);
  return (*state)->bytes();
}

TEST(StateAccountingTest, PlannerAdmissionAndWorkerAgreeInBf16AndFp32) {
  auto shard = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(shard.ok()) << shard.status();
  const model::ModelConfig& c = (*shard)->config();
  const std::vector<int32_t> prompt = testing::GoldenPrompt("p300");  // not a whole number of blocks
  const int64_t positions = static_cast<int64_t>(prompt.size());
  ASSERT_NE(positions % model::kKvBlockTokens, 0);
  const plan::ModelSizes sizes = plan::ComputeModelSizes(c);
  int64_t per_dtype[2] = {0, 0};
  for (const DType dtype : {DType::kBF16, DType::kF32}) {
    SCOPED_TRACE(model::KvDTypeName(dtype));
    // The planner: one sequence at max_context = the prompt's length, every role on one worker.
    plan::ClusterSpec cluster;
    plan::WorkerSpec w;
    w.name = w.group = "w";
    w.memory_gib = 64;
    w.mem_bandwidth_gbs = w.tflops = w.network_gbps = 1;
    cluster.workers = {w};
    cluster.serving.max_context = positions;
    cluster.serving.max_sequences = 1;
    cluster.serving.kv_dtype = dtype;
    plan::Layout layout = plan::Layout::Empty(c.num_hidden_layers, c.num_local_experts, 1);
    layout.workers[0].embedding = layout.workers[0].lm_head = true;
    layout.workers[0].attention = plan::LayerRange{0, c.num_hidden_layers};
    const plan::WorkerMemory planned = plan::CostModel(sizes, cluster).Memory(layout)[0];
    // Admission: one sequence of that many positions.
    coordinator::StateBudget budget(c, dtype, {{"w", 0, c.num_hidden_layers, int64_t{1} << 40, ""}});
    std::string why;
    ASSERT_EQ(budget.TryReserve(1, positions, &why), coordinator::StateBudget::Admission::kAdmitted) << why;
    // The worker, after the real prefill.
    const int64_t held = HeldAfterPrefill(**shard, prompt, dtype);

    EXPECT_EQ(planned.kv_cache + planned.lightning_state, budget.reserved_bytes("w"));
    EXPECT_EQ(held, budget.reserved_bytes("w"));
    EXPECT_EQ(held, model::SequenceStateBytes(c, 0, c.num_hidden_layers, positions, dtype));
    per_dtype[dtype == DType::kF32 ? 1 : 0] = planned.kv_cache;
  }
  EXPECT_EQ(per_dtype[1], 2 * per_dtype[0]) << "bf16 KV is half of fp32";
}

}  // namespace
}  // namespace mmx
