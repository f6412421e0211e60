// The multi-GPU worker's split (model/rank_split.h, model/ranked_stage_compute.h): how the
// weights are sliced, what is refused, how a rank's failure is contained, and the CPU-thread
// collective. The split run by threads is held to the golden set through the engine
// (tests/engine/golden_test.cc, layer_trace_test.cc): heads over 2 ranks (KV heads split) and 4
// (replicated), experts in blocks, the lightning norm's cross-rank sum of squares.
#include "parallel/ranked_stage_compute.h"
#include "parallel/thread_rank_group.h"

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "tests/testing/whole_model.h"

namespace mmx::parallel {

using namespace ::mmx::model;  // NOLINT: the tests read the model's types throughout
namespace {

using ::testing::HasSubstr;

TEST(RankSliceTest, EachRankHoldsItsHeadsAndABlockOfExperts) {
  auto weights = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  auto sliced = SliceWeightsForRanks((*weights)->weights_view(), 2);
  ASSERT_TRUE(sliced.ok()) << sliced.status();
  const ModelConfig& full = (*weights)->config();  // 4 heads, 2 KV heads, head_dim 64
  for (int r = 0; r < 2; ++r) {
    const RankWeights& w = *(*sliced)[r];
    EXPECT_EQ(w.config.num_attention_heads, 2);
    EXPECT_EQ(w.config.num_key_value_heads, 1);
    const AttentionBlockWeights& lightning = w.attention[0];
    EXPECT_EQ(lightning.lightning.qkv.rows, 2 * 3 * 64);
    EXPECT_EQ(lightning.lightning.out.rows, full.hidden_size);
    EXPECT_EQ(lightning.lightning.out.cols, 2 * 64);
    EXPECT_EQ(lightning.lightning.norm.size(), 2u * 64);
    EXPECT_EQ(lightning.lightning.slopes[0], (*weights)->attention_blocks[0].lightning.slopes[2 * r]);
    // Row blocks are views into the full matrix; column blocks are copies.
    EXPECT_EQ(lightning.lightning.qkv.data,
              static_cast<const char*>((*weights)->attention_blocks[0].lightning.qkv.data) + r * 2 * 3 * 64 * full.hidden_size * 2);
    EXPECT_EQ(w.attention[3].softmax.k.rows, 64);
    EXPECT_EQ(w.embedding != nullptr, r == 0);
    EXPECT_EQ(w.tail != nullptr, r == 0);
    int held = 0;
    for (int e = 0; e < full.num_local_experts; ++e) {
      if (w.experts[5].experts[e].loaded()) {
        ++held;
        EXPECT_EQ(e / 4, r) << "expert " << e;  // blocks of 4 of the 8
      }
    }
    EXPECT_EQ(held, 4);
  }
  // Out-projection columns of rank 1 are columns [128, 256) of the full matrix.
  const auto& full_out = (*weights)->attention_blocks[0].lightning.out;
  const auto& part = (*sliced)[1]->attention[0].lightning.out;
  const uint16_t* a = static_cast<const uint16_t*>(full_out.data);
  const uint16_t* b = static_cast<const uint16_t*>(part.data);
  for (int64_t row : {int64_t{0}, full_out.rows - 1}) {
    for (int64_t col : {int64_t{0}, part.cols - 1}) EXPECT_EQ(b[row * part.cols + col], a[row * full_out.cols + 128 + col]);
  }
}

TEST(RankSliceTest, HeadsThatDoNotSplitEvenlyAreRefused) {
  auto weights = testing::LoadWholeModel(testing::GoldenDir());
  ASSERT_TRUE(weights.ok()) << weights.status();
  auto compute = MakeThreadRankedCpuStageCompute((*weights)->weights_view(), 3);
  ASSERT_FALSE(compute.ok());
  EXPECT_EQ(compute.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(compute.status().message(), HasSubstr("do not split evenly over 3 GPUs"));
}

// A rank whose attention and expert calls fail on demand, counting them.
class FakeRank final : public StageCompute {
 public:
  explicit FakeRank(const ModelConfig& config) : config_(config) {}
  std::string device_name() const override { return "fake"; }
  absl::StatusOr<std::unique_ptr<SequenceState>> NewSequence(int first_layer, int end_layer, DType kv_dtype) override {
    return std::make_unique<SequenceState>(config_, first_layer, end_layer, kv_dtype);
  }
  absl::Status Embed(const int32_t*, int64_t, float*) override { return absl::OkStatus(); }
  absl::Status AttentionBlock(int, const BatchLayout&, float*, std::vector<float>*, Routing*) override {
    ++attention_calls;
    return attention_status;
  }
  absl::StatusOr<int64_t> ExpertPairs(int, const float*, const int*, const float*, int64_t, float*) override {
    ++expert_calls;
    if (!expert_status.ok()) return expert_status;
    return 0;
  }
  absl::Status Logits(const float*, const std::vector<int64_t>&, float*) override { return absl::OkStatus(); }
  absl::Status FinalNorm(const float*, const std::vector<int64_t>&, float*) override { return absl::OkStatus(); }

  absl::Status attention_status, expert_status;
  std::atomic<int> attention_calls{0}, expert_calls{0};

 private:
  ModelConfig config_;
};

// Two fake ranks, rank r holding expert r of every layer; counts the group's aborts.
class RankFailureTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto weights = testing::LoadWholeModel(testing::GoldenDir());
    ASSERT_TRUE(weights.ok()) << weights.status();
    config_ = (*weights)->config();
    std::vector<std::unique_ptr<RankWeights>> sliced;
    std::vector<std::unique_ptr<StageCompute>> ranks;
    for (int r = 0; r < 2; ++r) {
      auto w = std::make_unique<RankWeights>();
      w->config = config_;
      w->rank = r;
      w->experts.resize(config_.num_hidden_layers);
      for (MoeWeights& m : w->experts) {
        m.experts.resize(config_.num_local_experts);
        m.experts[r].w1.data = &held_;  // only loaded() is looked at
      }
      sliced.push_back(std::move(w));
      auto rank = std::make_unique<FakeRank>(config_);
      fakes_[r] = rank.get();
      ranks.push_back(std::move(rank));
    }
    compute_ = std::make_unique<RankedStageCompute>(config_, std::move(sliced), std::move(ranks),
                                                    [this] { ++aborts_; }, "fake x2");
    auto state = compute_->NewSequence(0, config_.num_hidden_layers, DType::kF32);
    ASSERT_TRUE(state.ok()) << state.status();
    state_ = std::move(*state);
    batch_.Add(1, 0, state_.get());
    x_.assign(config_.hidden_size, 0.f);
  }
  absl::Status Attention() { return compute_->AttentionBlock(0, batch_, x_.data(), &residual_, &routing_); }
  absl::StatusOr<int64_t> Experts() {
    const std::vector<float> rows(2 * config_.hidden_size, 0.f), weights = {1.f, 1.f};
    const std::vector<int> ids = {0, 1};  // one pair on each rank
    std::vector<float> out(rows.size());
    return compute_->ExpertPairs(0, rows.data(), ids.data(), weights.data(), 2, out.data());
  }

  ModelConfig config_;
  char held_ = 0;
  FakeRank* fakes_[2] = {};
  std::atomic<int> aborts_{0};
  std::unique_ptr<StageCompute> compute_;
  std::unique_ptr<SequenceState> state_;
  BatchLayout batch_;
  std::vector<float> x_, residual_;
  Routing routing_;
};

TEST_F(RankFailureTest, AttentionFailureAbortsAndLaterAttentionIsRefused) {
  fakes_[1]->attention_status = absl::ResourceExhaustedError("out of memory on rank 1");
  absl::Status first = Attention();
  EXPECT_EQ(first.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_GE(aborts_.load(), 1);
  // The aborted collectives (freed NCCL communicators on a GPU) must not be touched again.
  fakes_[1]->attention_status = absl::OkStatus();
  const int calls = fakes_[0]->attention_calls + fakes_[1]->attention_calls;
  absl::Status later = Attention();
  EXPECT_EQ(later.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(later.message(), HasSubstr("restart the worker"));
  EXPECT_EQ(fakes_[0]->attention_calls + fakes_[1]->attention_calls, calls);
  // Experts use no collective and still run.
  absl::StatusOr<int64_t> experts = Experts();
  EXPECT_TRUE(experts.ok()) << experts.status();
}

TEST_F(RankFailureTest, ExpertFailureAbortsNothing) {
  fakes_[1]->expert_status = absl::ResourceExhaustedError("out of memory on rank 1");
  absl::StatusOr<int64_t> experts = Experts();
  EXPECT_EQ(experts.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(fakes_[0]->expert_calls, 1);
  EXPECT_EQ(aborts_.load(), 0);
  absl::Status attention = Attention();
  EXPECT_TRUE(attention.ok()) << attention;
  EXPECT_EQ(fakes_[0]->attention_calls, 1);
  EXPECT_EQ(fakes_[1]->attention_calls, 1);
}

TEST(ThreadRankGroupTest, EveryRankGetsTheSameSum) {
  ThreadRankGroup group(3);
  std::vector<std::vector<float>> data = {{1.f, 1e8f}, {2.f, 1.f}, {3.f, -1e8f}};
  std::vector<std::thread> threads;
  std::vector<absl::Status> status(3);
  for (int r = 0; r < 3; ++r) {
    threads.emplace_back([&, r] { status[r] = group.member(r)->AllReduceSum(data[r].data(), 2); });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < 3; ++r) {
    ASSERT_TRUE(status[r].ok()) << status[r];
    EXPECT_EQ(data[r][0], 6.f);
    EXPECT_EQ(data[r][1], data[0][1]);  // bit-identical on every rank (rank order)
  }
}

TEST(ThreadRankGroupTest, AbortReleasesRanksWaitingForOneThatFailed) {
  ThreadRankGroup group(2);
  float x = 1;
  absl::Status waiting;
  std::thread t([&] { waiting = group.member(0)->AllReduceSum(&x, 1); });
  group.Abort();  // rank 1 never comes
  t.join();
  EXPECT_EQ(waiting.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(waiting.message(), HasSubstr("another rank"));
}

}  // namespace
}  // namespace mmx::parallel
