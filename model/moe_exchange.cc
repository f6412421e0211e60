#include "model/moe_exchange.h"

#include <algorithm>
#include <map>

namespace mmx::model {

MoeExchange MoeExchange::Dispatch(const Routing& routing, const float* w, int64_t num_tokens, int64_t hidden,
                                  const std::vector<uint32_t>& pair_holder) {
  MoeExchange x;
  x.routing_ = routing;
  x.num_tokens_ = num_tokens;
  x.hidden_ = hidden;
  const int K = routing.k;
  const int64_t P = num_tokens * K;
  x.contributions_.assign(static_cast<size_t>(P * hidden), 0.f);
  std::map<uint32_t, size_t> index;  // holder -> part, ascending holder id
  for (int64_t p = 0; p < P; ++p) index.emplace(pair_holder[p], 0);
  for (auto& [holder, i] : index) {
    i = x.parts_.size();
    x.parts_.push_back(Part{holder, {}, {}, {}, {}});
  }
  for (int64_t p = 0; p < P; ++p) {
    Part& part = x.parts_[index[pair_holder[p]]];
    part.pairs.push_back(p);
    part.rows.insert(part.rows.end(), w + (p / K) * hidden, w + (p / K + 1) * hidden);
    part.expert_ids.push_back(routing.expert_ids[p]);
    part.weights.push_back(routing.weights[p]);
  }
  return x;
}

void MoeExchange::Receive(size_t index, const float* results) {
  const Part& part = parts_[index];
  for (size_t i = 0; i < part.pairs.size(); ++i) {
    std::copy_n(results + i * hidden_, hidden_, contributions_.data() + part.pairs[i] * hidden_);
  }
}

void MoeExchange::Combine(float* m) const {
  SumExpertContributions(routing_, contributions_.data(), num_tokens_, hidden_, m);
}

}  // namespace mmx::model
