#include "parallel/rank_split.h"


#include <algorithm>
#include <cmath>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::parallel {

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
  std::vector<std::vector<int>> blocks = ExpertBlocks(experts_held, ranks);
  for (int r = 0; r < ranks; ++r) slices[r].experts = std::move(blocks[r]);
  return slices;
}

std::vector<std::vector<int>> ExpertBlocks(const std::vector<int>& experts_held, int ranks) {
  std::vector<std::vector<int>> blocks(ranks);
  const size_t n = experts_held.size();
  size_t next = 0;
  for (int r = 0; r < ranks; ++r) {
    const size_t take = n / ranks + (static_cast<size_t>(r) < n % ranks ? 1 : 0);
    blocks[r].assign(experts_held.begin() + next, experts_held.begin() + next + take);
    next += take;
  }
  return blocks;
}

ModelConfig RankConfig(const ModelConfig& full, const RankSlice& slice) {
  ModelConfig c = full;
  c.num_attention_heads = slice.q_end - slice.q_begin;
  c.num_key_value_heads = slice.kv_end - slice.kv_begin;
  return c;
}

namespace {

// Columns [begin, end) of w, copied into `storage` (rows stay whole; per-row int8 scales too).
kernels::WeightView ColumnBlock(const kernels::WeightView& w, int64_t begin, int64_t end,
                                std::vector<std::vector<char>>* copies) {
  if (w.data == nullptr) return w;
  const int64_t elem = static_cast<int64_t>(DTypeSize(w.dtype));
  const int64_t width = end - begin;
  std::vector<char>& storage = copies->emplace_back(w.rows * width * elem);
  const char* src = static_cast<const char*>(w.data);
  for (int64_t r = 0; r < w.rows; ++r) {
    std::copy_n(src + (r * w.cols + begin) * elem, width * elem, storage.data() + r * width * elem);
  }
  kernels::WeightView out = w;
  out.data = storage.data();
  out.cols = width;
  return out;
}

kernels::WeightView RowBlock(const kernels::WeightView& w, int64_t begin, int64_t end) {
  return w.data == nullptr ? w : w.Rows(begin, end);
}

std::vector<float> Slice(const std::vector<float>& v, int64_t begin, int64_t end) {
  return v.empty() ? v : std::vector<float>(v.begin() + begin, v.begin() + end);
}

}  // namespace

WeightsView RankWeights::view() const {
  WeightsView v;
  v.config = &config;
  v.embedding = embedding;
  v.first_layer = first_layer;
  v.attention = &attention;
  v.experts = &experts;
  v.tail = tail;
  return v;
}

absl::StatusOr<std::vector<std::unique_ptr<RankWeights>>> SliceWeightsForRanks(const WeightsView& full, int ranks) {
  const ModelConfig& c = *full.config;
  MMX_ASSIGN_OR_RETURN(std::vector<RankSlice> slices, SplitAcrossRanks(c, ranks, {}));
  const int64_t D = c.head_dim;
  std::vector<std::unique_ptr<RankWeights>> out;
  for (int r = 0; r < ranks; ++r) {
    const RankSlice& s = slices[r];
    auto w = std::make_unique<RankWeights>();
    w->config = RankConfig(c, s);
    w->rank = r;
    w->first_layer = full.first_layer;
    if (r == 0) {
      w->embedding = full.embedding;
      w->tail = full.tail;
    }
    if (full.attention != nullptr) {
      for (const AttentionBlockWeights& a : *full.attention) {
        AttentionBlockWeights b = a;  // norms and router replicated; the head slices below
        if (a.kind == model::AttentionKind::kLightning) {
          b.lightning.qkv = RowBlock(a.lightning.qkv, s.q_begin * 3 * D, s.q_end * 3 * D);
          b.lightning.gate = RowBlock(a.lightning.gate, s.q_begin * D, s.q_end * D);
          b.lightning.out = ColumnBlock(a.lightning.out, s.q_begin * D, s.q_end * D, &w->copies);
          b.lightning.norm = Slice(a.lightning.norm, s.q_begin * D, s.q_end * D);
          b.lightning.slopes = Slice(a.lightning.slopes, s.q_begin, s.q_end);
        } else {
          b.softmax.q = RowBlock(a.softmax.q, s.q_begin * D, s.q_end * D);
          b.softmax.k = RowBlock(a.softmax.k, s.kv_begin * D, s.kv_end * D);
          b.softmax.v = RowBlock(a.softmax.v, s.kv_begin * D, s.kv_end * D);
          b.softmax.o = ColumnBlock(a.softmax.o, s.q_begin * D, s.q_end * D, &w->copies);
        }
        w->attention.push_back(std::move(b));
      }
    }
    out.push_back(std::move(w));
  }
  if (full.experts != nullptr) {
    for (auto& w : out) w->experts.resize(full.experts->size());
    for (size_t l = 0; l < full.experts->size(); ++l) {
      const MoeWeights& m = (*full.experts)[l];
      std::vector<int> held;
      for (size_t e = 0; e < m.experts.size(); ++e) {
        if (m.experts[e].loaded()) held.push_back(static_cast<int>(e));
      }
      const std::vector<std::vector<int>> blocks = ExpertBlocks(held, ranks);
      for (int r = 0; r < ranks; ++r) {
        MoeWeights& mine = out[r]->experts[l];
        mine.layer = m.layer;
        mine.experts.resize(m.experts.size());
        for (int e : blocks[r]) mine.experts[e] = m.experts[e];
      }
    }
  }
  return out;
}

}  // namespace mmx::parallel
