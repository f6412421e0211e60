#include "model/moe_exchange.h"

#include <algorithm>
#include <utility>

#include "base/status_macros.h"

namespace mmx::model {

void MoeExchange::Dispatch(const Routing& routing, const float* w, int64_t num_tokens, int64_t hidden,
                           const std::vector<uint32_t>& pair_holder) {
  routing_.k = routing.k;
  routing_.expert_ids = routing.expert_ids;
  routing_.weights = routing.weights;
  num_tokens_ = num_tokens;
  hidden_ = hidden;
  const int K = routing.k;
  const int64_t P = num_tokens * K;
  // The holders, ascending; parts keep their buffers' capacity from earlier layers.
  std::vector<uint32_t> holders(pair_holder.begin(), pair_holder.begin() + P);
  std::sort(holders.begin(), holders.end());
  holders.erase(std::unique(holders.begin(), holders.end()), holders.end());
  num_parts_ = holders.size();
  parts_.resize(num_parts_);
  for (size_t i = 0; i < num_parts_; ++i) {
    Part& part = parts_[i];
    part.holder = holders[i];
    part.pairs.clear();
    part.rows.clear();
    part.expert_ids.clear();
    part.weights.clear();
  }
  for (int64_t p = 0; p < P; ++p) {
    const size_t i = std::lower_bound(holders.begin(), holders.end(), pair_holder[p]) - holders.begin();
    Part& part = parts_[i];
    part.pairs.push_back(p);
    part.rows.insert(part.rows.end(), w + (p / K) * hidden, w + (p / K + 1) * hidden);
    part.expert_ids.push_back(routing.expert_ids[p]);
    part.weights.push_back(routing.weights[p]);
  }
  if (results_.size() < num_parts_) results_.resize(num_parts_);
}

float* MoeExchange::ResultsBuffer(size_t index) {
  PooledBuffer<float>& r = results_[index];
  r.resize(parts_[index].rows.size());
  return r.data();
}

void MoeExchange::Receive(size_t index, const float* results) {
  float* buffer = ResultsBuffer(index);
  if (results != buffer) std::copy_n(results, parts_[index].rows.size(), buffer);
}

void MoeExchange::Receive(size_t index, PooledBuffer<float> results) {
  MMX_CHECK(results.size() == parts_[index].rows.size());  // the caller checked the reply's size
  results_[index] = std::move(results);
}

void MoeExchange::Combine(float* m) {
  contributions_.resize(static_cast<size_t>(num_tokens_ * routing_.k * hidden_));
  for (size_t i = 0; i < num_parts_; ++i) {
    const Part& part = parts_[i];
    const float* results = results_[i].data();
    for (size_t r = 0; r < part.pairs.size(); ++r) {
      std::copy_n(results + r * hidden_, hidden_, contributions_.data() + part.pairs[r] * hidden_);
    }
  }
  SumExpertContributions(routing_, contributions_.data(), num_tokens_, hidden_, m);
}

}  // namespace mmx::model
