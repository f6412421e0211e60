#include "worker/rank_split.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace mmx::worker {

absl::StatusOr<std::vector<RankSlice>> SplitAcrossRanks(const model::ModelConfig& c, int ranks,
                                                        const std::vector<int>& experts_held) {
  if (ranks < 1) return absl::InvalidArgumentError(absl::StrCat("a worker needs at least one rank, got ", ranks));
  const int q = c.num_attention_heads, kv = c.num_key_value_heads;
  if (q % ranks != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the model's ", q, " attention heads do not split evenly over ",
                                                   ranks, " GPUs; use a number of GPUs that divides ", q));
  }
  if (kv > 0 && kv % ranks != 0 && ranks % kv != 0) {
    return absl::InvalidArgumentError(absl::StrCat("the model's ", kv, " key/value heads and ", ranks,
                                                   " GPUs: one must divide the other"));
  }
  std::vector<RankSlice> slices(ranks);
  const int q_per_rank = q / ranks;
  for (int r = 0; r < ranks; ++r) {
    RankSlice& s = slices[r];
    s.q_begin = r * q_per_rank;
    s.q_end = s.q_begin + q_per_rank;
    if (kv == 0) continue;
    if (kv >= ranks) {
      s.kv_begin = r * (kv / ranks);
      s.kv_end = s.kv_begin + kv / ranks;
    } else {
      // Fewer KV heads than ranks: query head h reads KV head h / (q / kv); this rank's queries
      // all read the same one, which it keeps a copy of.
      s.kv_begin = s.q_begin / (q / kv);
      s.kv_end = s.kv_begin + 1;
    }
  }
  // Experts in contiguous blocks, the first (n % ranks) ranks one more.
  const size_t n = experts_held.size();
  size_t next = 0;
  for (int r = 0; r < ranks; ++r) {
    const size_t take = n / ranks + (static_cast<size_t>(r) < n % ranks ? 1 : 0);
    slices[r].experts.assign(experts_held.begin() + next, experts_held.begin() + next + take);
    next += take;
  }
  return slices;
}

void PartialSumOfSquares(const float* x, int64_t num_tokens, int64_t slice_width, double* out) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    double sum = 0;
    for (int64_t i = 0; i < slice_width; ++i) sum += static_cast<double>(x[t * slice_width + i]) * x[t * slice_width + i];
    out[t] = sum;
  }
}

void NormalizeSlice(const float* x, int64_t num_tokens, int64_t slice_width, const double* total_sum_of_squares,
                    int64_t full_width, const float* gamma_slice, float eps, float* out) {
  for (int64_t t = 0; t < num_tokens; ++t) {
    const float inv = static_cast<float>(1.0 / std::sqrt(total_sum_of_squares[t] / static_cast<double>(full_width) + eps));
    for (int64_t i = 0; i < slice_width; ++i) {
      out[t * slice_width + i] = x[t * slice_width + i] * inv * gamma_slice[i];
    }
  }
}

}  // namespace mmx::worker
