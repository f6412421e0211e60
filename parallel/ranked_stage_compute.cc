#include "parallel/ranked_stage_compute.h"

#include <algorithm>
#include <thread>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "kernels/kernels.h"
#include "model/moe_exchange.h"
#include "parallel/thread_rank_group.h"

namespace mmx::parallel {

using model::DeviceSequenceState;
using model::ModelConfig;
using model::MoeExchange;
using model::SequenceSlice;
using model::WeightsView;
namespace {

// A sequence's state on every rank; the outer SequenceState keeps only the lengths.
class RankedSequenceState final : public DeviceSequenceState {
 public:
  explicit RankedSequenceState(std::vector<std::unique_ptr<SequenceState>> ranks) : ranks_(std::move(ranks)) {}
  int64_t bytes() const override {
    int64_t total = 0;
    for (const auto& s : ranks_) total += s->bytes();
    return total;
  }
  SequenceState* rank(int r) const { return ranks_[r].get(); }

 private:
  std::vector<std::unique_ptr<SequenceState>> ranks_;
};

}  // namespace

RankedStageCompute::RankedStageCompute(const ModelConfig& config, std::vector<std::unique_ptr<RankWeights>> weights,
                                       std::vector<std::unique_ptr<StageCompute>> ranks, std::function<void()> abort,
                                       std::string name)
    : config_(config), weights_(std::move(weights)), abort_(std::move(abort)), ranks_(std::move(ranks)),
      name_(std::move(name)) {}

int64_t RankedStageCompute::device_weight_bytes() const {
  int64_t total = 0;
  for (const auto& r : ranks_) total += r->device_weight_bytes();
  return total;
}

absl::Status RankedStageCompute::OnEveryRank(const std::function<absl::Status(int)>& fn, bool collective) {
  const int R = static_cast<int>(ranks_.size());
  std::vector<absl::Status> status(R);
  std::vector<std::thread> threads;
  auto run = [&](int r) {
    status[r] = fn(r);
    if (!status[r].ok() && collective) {
      aborted_.store(true);
      abort_();
    }
  };
  // The caller's activation precision is thread-local: the rank threads take it over.
  const kernels::ActivationPrecision precision = kernels::CurrentActivationPrecision();
  for (int r = 1; r < R; ++r) {
    threads.emplace_back([&, r, precision] {
      kernels::ScopedActivationPrecision scoped(precision);
      run(r);
    });
  }
  run(0);
  for (std::thread& t : threads) t.join();
  // The rank that failed first, not the ones its abort released.
  for (const absl::Status& st : status) {
    if (!st.ok() && !absl::IsAborted(st)) return st;
  }
  for (const absl::Status& st : status) MMX_RETURN_IF_ERROR(st);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SequenceState>> RankedStageCompute::NewSequence(int first_layer, int end_layer,
                                                                               DType kv_dtype) {
  std::vector<std::unique_ptr<SequenceState>> states;
  for (const auto& r : ranks_) {
    MMX_ASSIGN_OR_RETURN(std::unique_ptr<SequenceState> s, r->NewSequence(first_layer, end_layer, kv_dtype));
    states.push_back(std::move(s));
  }
  auto state =
      std::make_unique<SequenceState>(config_, first_layer, end_layer, kv_dtype, SequenceState::Storage::kDevice);
  state->set_device(std::make_unique<RankedSequenceState>(std::move(states)));
  return state;
}

absl::Status RankedStageCompute::Embed(const int32_t* ids, int64_t n, float* x) {
  return ranks_[0]->Embed(ids, n, x);
}

absl::Status RankedStageCompute::Logits(const float* x, const std::vector<int64_t>& rows, float* logits) {
  return ranks_[0]->Logits(x, rows, logits);
}

absl::Status RankedStageCompute::FinalNorm(const float* x, const std::vector<int64_t>& rows, float* h) {
  return ranks_[0]->FinalNorm(x, rows, h);
}

absl::Status RankedStageCompute::AttentionBlock(int layer, const BatchLayout& batch, float* x,
                                                std::vector<float>* residual, Routing* routing) {
  if (aborted_.load()) {
    return absl::FailedPreconditionError(
        "an earlier failure aborted the collectives between this worker's GPUs (NCCL communicators are not "
        "reusable after an abort); restart the worker");
  }
  const int R = static_cast<int>(ranks_.size());
  const size_t width = static_cast<size_t>(batch.num_tokens * config_.hidden_size);
  // Each rank gets the batch with its own states, and its own copy of x (overwritten with w).
  std::vector<BatchLayout> batches(R, batch);
  for (int r = 0; r < R; ++r) {
    for (SequenceSlice& s : batches[r].sequences) {
      const auto* ranked = static_cast<const RankedSequenceState*>(s.state->device());
      if (ranked == nullptr) return absl::InternalError("a sequence without per-rank state reached a ranked stage");
      s.state = ranked->rank(r);
    }
  }
  std::vector<std::vector<float>> xs(R - 1, std::vector<float>(x, x + width)), residuals(R - 1);
  std::vector<Routing> routings(R - 1);
  MMX_RETURN_IF_ERROR(OnEveryRank([&](int r) {
    if (r == 0) return ranks_[0]->AttentionBlock(layer, batches[0], x, residual, routing);
    return ranks_[r]->AttentionBlock(layer, batches[r], xs[r - 1].data(), &residuals[r - 1], &routings[r - 1]);
  }, /*collective=*/true));
  for (const SequenceSlice& s : batch.sequences) s.state->layer(layer).length += s.num_tokens;
  return absl::OkStatus();
}

absl::StatusOr<int64_t> RankedStageCompute::ExpertPairs(int layer, const float* rows, const int* expert_ids,
                                                        const float* weights, int64_t n, float* out) {
  const int R = static_cast<int>(ranks_.size());
  const int64_t H = config_.hidden_size;
  // The pairs, as n rows routed to one expert each, dispatched to the rank that holds the expert.
  Routing pairs;
  pairs.k = 1;
  pairs.expert_ids.assign(expert_ids, expert_ids + n);
  pairs.weights.assign(weights, weights + n);
  std::vector<uint32_t> rank_of(n);
  for (int64_t i = 0; i < n; ++i) {
    int owner = -1;
    for (int r = 0; r < R && owner < 0; ++r) {
      const auto& experts = weights_[r]->experts;
      if (layer < static_cast<int>(experts.size()) && expert_ids[i] >= 0 &&
          expert_ids[i] < static_cast<int>(experts[layer].experts.size()) &&
          experts[layer].experts[expert_ids[i]].loaded()) {
        owner = r;
      }
    }
    if (owner < 0) {
      return absl::FailedPreconditionError(absl::StrCat("no rank holds expert ", expert_ids[i], " of layer ", layer));
    }
    rank_of[i] = static_cast<uint32_t>(owner);
  }
  MoeExchange exchange;
  exchange.Dispatch(pairs, rows, n, H, rank_of);
  std::vector<int64_t> bytes(R, 0);
  MMX_RETURN_IF_ERROR(OnEveryRank([&](int r) -> absl::Status {
    for (size_t p = 0; p < exchange.parts().size(); ++p) {
      const MoeExchange::Part& part = exchange.parts()[p];
      if (part.holder != static_cast<uint32_t>(r)) continue;
      // Each rank writes only its own parts' buffers.
      MMX_ASSIGN_OR_RETURN(bytes[r], ranks_[r]->ExpertPairs(layer, part.rows.data(), part.expert_ids.data(),
                                                            part.weights.data(), part.num_rows(),
                                                            exchange.ResultsBuffer(p)));
    }
    return absl::OkStatus();
  }, /*collective=*/false));
  // One expert per row: the combined rows are the results, in row order.
  exchange.Combine(out);
  int64_t total = 0;
  for (int64_t b : bytes) total += b;
  return total;
}

absl::StatusOr<std::unique_ptr<StageCompute>> MakeThreadRankedCpuStageCompute(const WeightsView& weights, int ranks) {
  MMX_ASSIGN_OR_RETURN(std::vector<std::unique_ptr<RankWeights>> sliced, SliceWeightsForRanks(weights, ranks));
  auto group = std::make_shared<ThreadRankGroup>(ranks);
  std::vector<std::unique_ptr<StageCompute>> computes;
  for (int r = 0; r < ranks; ++r) computes.push_back(model::MakeCpuStageCompute(sliced[r]->view(), group->member(r)));
  return std::make_unique<RankedStageCompute>(*weights.config, std::move(sliced), std::move(computes),
                                              [group] { group->Abort(); }, absl::StrCat("cpu x", ranks, " ranks"));
}

}  // namespace mmx::parallel
