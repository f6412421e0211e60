// MoeExchange: the bookkeeping of one MoE layer's dispatch and combine, wherever its experts
// run (DeepEP's shape: dispatch(routing, holders) -> handle; combine(handle, results)). Dispatch
// groups the routed (token, expert) pairs by the holder that runs each expert this time and
// gathers each holder's input rows; each holder returns weight * expert(row) for its rows in
// the same order; Combine sums every token's contributions in ascending expert id (the
// reference order, MODEL.md §5). The holders may be expert hosts across the network (a stage's
// dispatch), this process (the same code, no hop), or the ranks of a multi-GPU worker.
#pragma once

#include <cstdint>
#include <vector>

#include "model/layers.h"

namespace mmx::model {

class MoeExchange {
 public:
  // What one holder runs: rows [n, H] (each its token's normed MoE input), the expert id and
  // routing weight of each, and which pair (t*K + j) each row is.
  struct Part {
    uint32_t holder = 0;
    std::vector<int64_t> pairs;
    std::vector<float> rows;
    std::vector<int> expert_ids;
    std::vector<float> weights;
    int64_t num_rows() const { return static_cast<int64_t>(pairs.size()); }
  };

  MoeExchange() = default;
  // Groups `routing`'s pairs of w [T, H] by holder: holder_of(expert id) for every routed
  // expert. Parts come in ascending holder id.
  template <class HolderOf>
  static MoeExchange Dispatch(const Routing& routing, const float* w, int64_t num_tokens, int64_t hidden,
                              const HolderOf& holder_of) {
    std::vector<uint32_t> holder(routing.expert_ids.size());
    for (size_t p = 0; p < holder.size(); ++p) holder[p] = static_cast<uint32_t>(holder_of(routing.expert_ids[p]));
    return Dispatch(routing, w, num_tokens, hidden, holder);
  }
  // The same with the holder of every pair given ([T*K]).
  static MoeExchange Dispatch(const Routing& routing, const float* w, int64_t num_tokens, int64_t hidden,
                              const std::vector<uint32_t>& pair_holder);

  std::vector<Part>& parts() { return parts_; }
  const std::vector<Part>& parts() const { return parts_; }

  // Part `index`'s results, rows [n, H] = weight * expert(row), in the part's row order.
  void Receive(size_t index, const float* results);
  // m [T, H] = each token's K contributions summed in ascending expert id. Every part must
  // have been received.
  void Combine(float* m) const;
  // The contributions in pair order, [T*K, H] (row t*K + j: pair (t, j)).
  const std::vector<float>& contributions() const { return contributions_; }

 private:
  Routing routing_;
  int64_t num_tokens_ = 0, hidden_ = 0;
  std::vector<Part> parts_;
  std::vector<float> contributions_;  // [T*K, H]
};

}  // namespace mmx::model
