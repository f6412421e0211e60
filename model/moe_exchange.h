// MoeExchange: the bookkeeping of one MoE layer's dispatch and combine, wherever its experts
// run (DeepEP's shape: dispatch(routing, holders) -> handle; combine(handle, results)). Dispatch
// groups the routed (token, expert) pairs by the holder that runs each expert this time and
// gathers each holder's input rows; each holder returns weight * expert(row) for its rows in
// the same order; Combine sums every token's contributions in ascending expert id (the
// reference order, MODEL.md §5). The holders may be expert hosts across the network (a stage's
// dispatch), this process (the same code, no hop), or the ranks of a multi-GPU worker.
//
// One object serves layer after layer: its buffers keep their capacity (decode would otherwise
// allocate, and page-fault, several hundred KB per layer).
#pragma once

#include <cstdint>
#include <vector>

#include "base/pooled_buffer.h"
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

  // Groups `routing`'s pairs of w [T, H] by holder, pair_holder[p] the holder of pair p ([T*K]).
  // Parts come in ascending holder id. Forgets the previous layer's dispatch.
  void Dispatch(const Routing& routing, const float* w, int64_t num_tokens, int64_t hidden,
                const std::vector<uint32_t>& pair_holder);

  const std::vector<Part>& parts() const { return parts_; }

  // Where part `index`'s results go: rows [n, H] = weight * expert(row), in the part's row order,
  // to be written by the caller (then Receive(index) with no copy), or copied in by Receive.
  float* ResultsBuffer(size_t index);
  void Receive(size_t index, const float* results);
  // The same, taking over `results` (rows [n, H] as above; e.g. a received payload's memory).
  void Receive(size_t index, PooledBuffer<float> results);
  // m [T, H] = each token's K contributions summed in ascending expert id. Every part must
  // have been received.
  void Combine(float* m);
  // The contributions in pair order, [T*K, H] (row t*K + j: pair (t, j)), after Combine.
  const std::vector<float>& contributions() const { return contributions_; }

 private:
  Routing routing_;
  int64_t num_tokens_ = 0, hidden_ = 0;
  std::vector<Part> parts_;
  size_t num_parts_ = 0;
  std::vector<PooledBuffer<float>> results_;  // per part, [n, H]
  std::vector<float> contributions_;         // [T*K, H]
};

}  // namespace mmx::model
