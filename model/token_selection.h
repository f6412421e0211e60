// The pieces of sampling that touch every vocabulary entry, written to cost a few passes over
// the logits rather than a sort: the largest logit, the softmax weights at a temperature with
// their sums per block, the k best ids, and the nucleus (the smallest set of the most likely
// tokens reaching a share of the mass) found through a histogram of the weights.
#pragma once

#include <cstdint>
#include <vector>

namespace mmx::model {

// The largest logit, NaN entries ignored; -inf when there is no other.
float MaxLogit(const float* logits, int64_t n);

// Softmax weights at a temperature, unnormalised: w[i] = exp((logits[i] - max) / temperature),
// in (0, 1], 0 for -inf logits. Block sums let a draw skip to its block without a second pass.
struct ExpWeights {
  static constexpr int64_t kBlock = 1024;
  std::vector<float> w;
  std::vector<double> block_sums;  // over w[b * kBlock, (b + 1) * kBlock)
  double total = 0;
  void Compute(const float* logits, int64_t n, float max_logit, float temperature);
};

// log(sum(exp(logits))), through the largest logit; -inf when every logit is -inf.
float LogSumExp(const float* logits, int64_t n);

// The k best ids by (logit descending, id ascending), in that order. k <= n.
std::vector<int32_t> TopKIds(const float* logits, int64_t n, int64_t k);

// The first id whose logit equals `value` (NaN matches nothing); n when none does.
int64_t FirstIndexOf(const float* logits, int64_t n, float value);

// The id at which the running sum of w, in id order, first exceeds r (0 <= r < total).
int32_t DrawInIdOrder(const ExpWeights& weights, double r);

// The nucleus of mass share `top_p` in (0, 1): the shortest prefix of the ids ordered by (logit
// descending, id ascending) whose weights reach top_p * total. Held as a bucket and a tail: every
// id whose weight's bucket is above `bucket` is in, plus `boundary_ids`, the members of that
// bucket which make the cut. The bucket of a weight is its float bits >> kBucketShift, which
// orders weights (non-negative floats order as their bits) and so logits. The vectors are
// reused from call to call.
struct Nucleus {
  static constexpr int kBucketShift = 16;  // 7 mantissa bits: buckets 1/128 of a weight wide
  uint32_t bucket = 0;
  std::vector<uint16_t> keys;         // the bucket of each id's weight
  std::vector<double> block_sums;     // per ExpWeights block: the weight of its ids above `bucket`
  std::vector<int32_t> boundary_ids;  // in order
  double mass = 0;                    // of every id in the nucleus, as the draw sums it
};
void FindNucleus(const float* logits, const ExpWeights& weights, double top_p, Nucleus* nucleus);

// The id at which the running sum over the nucleus's members (ids above its bucket in id order,
// then its boundary ids) first exceeds r (0 <= r < nucleus.mass).
int32_t DrawInNucleus(const ExpWeights& weights, const Nucleus& nucleus, double r);

}  // namespace mmx::model
