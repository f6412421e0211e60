#include "model/token_selection.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "kernels/cpu/vec_math.h"

namespace mmx::model {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();

// Weights are in [0, 1]; anything above (a rounding of exp(0)) shares the top bucket.
constexpr uint32_t kTopBucket = 0x3F800000u >> Nucleus::kBucketShift;

uint32_t BucketOf(float w) {
  uint32_t bits;
  std::memcpy(&bits, &w, sizeof bits);
  return std::min(bits >> Nucleus::kBucketShift, kTopBucket);
}

// Ranks a before b: larger logit, then lower id.
struct Better {
  const float* logits;
  bool operator()(int32_t a, int32_t b) const {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  }
};

}  // namespace

float MaxLogit(const float* logits, int64_t n) {
  __m256 m = _mm256_set1_ps(kNegInf);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) m = _mm256_max_ps(_mm256_loadu_ps(logits + i), m);  // NaN: keeps m
  float lanes[8];
  _mm256_storeu_ps(lanes, m);
  float best = kNegInf;
  for (float l : lanes) best = std::max(best, l);
  for (; i < n; ++i) best = logits[i] > best ? logits[i] : best;
  return best;
}

void ExpWeights::Compute(const float* logits, int64_t n, float max_logit, float temperature) {
  w.resize(n);
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  block_sums.assign(blocks, 0.0);
  total = 0;
  const __m256 shift = _mm256_set1_ps(max_logit);
  const __m256 scale = _mm256_set1_ps(1.f / temperature);
  auto weights_of = [&](__m256 x) { return kernels::internal::Exp(_mm256_mul_ps(_mm256_sub_ps(x, shift), scale)); };
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * kBlock);
    __m256 sum = _mm256_setzero_ps();
    int64_t i = b * kBlock;
    for (; i + 8 <= end; i += 8) {
      const __m256 e = weights_of(_mm256_loadu_ps(logits + i));
      _mm256_storeu_ps(w.data() + i, e);
      sum = _mm256_add_ps(sum, e);
    }
    if (i < end) {  // the last few, padded with -inf (weight 0) so they round as the rest
      float padded[8];
      std::fill(padded, padded + 8, kNegInf);
      std::copy(logits + i, logits + end, padded);
      const __m256 e = weights_of(_mm256_loadu_ps(padded));
      _mm256_storeu_ps(padded, e);
      std::copy(padded, padded + (end - i), w.data() + i);
      sum = _mm256_add_ps(sum, e);
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    for (float l : lanes) block_sums[b] += l;
    total += block_sums[b];
  }
}

float LogSumExp(const float* logits, int64_t n) {
  const float max_logit = MaxLogit(logits, n);
  if (!std::isfinite(max_logit)) return max_logit;
  thread_local ExpWeights weights;
  weights.Compute(logits, n, max_logit, 1.f);
  return max_logit + static_cast<float>(std::log(weights.total));
}

std::vector<int32_t> TopKIds(const float* logits, int64_t n, int64_t k) {
  // A heap of the k best so far, its worst at the front. A later id ties the front only to rank
  // after it, so only logits strictly above the front's enter: eight compared at a time.
  const Better better{logits};
  std::vector<int32_t> heap(k);
  for (int32_t i = 0; i < k; ++i) heap[i] = i;
  std::make_heap(heap.begin(), heap.end(), better);
  auto offer = [&](int64_t i) {
    if (!(logits[i] > logits[heap.front()])) return;
    std::pop_heap(heap.begin(), heap.end(), better);
    heap.back() = static_cast<int32_t>(i);
    std::push_heap(heap.begin(), heap.end(), better);
  };
  int64_t i = k;
  for (; i + 8 <= n; i += 8) {
    const __m256 above = _mm256_cmp_ps(_mm256_loadu_ps(logits + i), _mm256_set1_ps(logits[heap.front()]), _CMP_GT_OQ);
    for (int mask = _mm256_movemask_ps(above); mask != 0; mask &= mask - 1) offer(i + __builtin_ctz(mask));
  }
  for (; i < n; ++i) offer(i);
  std::sort(heap.begin(), heap.end(), better);
  return heap;
}

int64_t FirstIndexOf(const float* logits, int64_t n, float value) {
  const __m256 target = _mm256_set1_ps(value);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(logits + i), target, _CMP_EQ_OQ));
    if (mask != 0) return i + __builtin_ctz(mask);
  }
  for (; i < n; ++i) {
    if (logits[i] == value) return i;
  }
  return n;
}

namespace {

// The last id with any weight, for a draw that rounding carried past the end.
int32_t LastPositive(const std::vector<float>& w) {
  for (int64_t i = static_cast<int64_t>(w.size()) - 1; i > 0; --i) {
    if (w[i] > 0.f) return static_cast<int32_t>(i);
  }
  return 0;
}

// The bucket of every weight, eight at a time.
void ComputeKeys(const std::vector<float>& w, std::vector<uint16_t>* keys) {
  const int64_t n = static_cast<int64_t>(w.size());
  keys->resize(n);
  const __m256i top = _mm256_set1_epi32(kTopBucket);
  auto bucket8 = [&](int64_t i) {
    const __m256i bits = _mm256_castps_si256(_mm256_loadu_ps(w.data() + i));
    return _mm256_min_epu32(_mm256_srli_epi32(bits, Nucleus::kBucketShift), top);
  };
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    // packus interleaves 128-bit halves; the permute puts the 16 keys back in order.
    const __m256i packed = _mm256_packus_epi32(bucket8(i), bucket8(i + 8));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(keys->data() + i), _mm256_permute4x64_epi64(packed, 0xD8));
  }
  for (; i < n; ++i) (*keys)[i] = static_cast<uint16_t>(BucketOf(w[i]));
}

// The boundary bucket: buckets from the top until their mass reaches `target`. Sets
// nucleus->bucket and returns the mass above it.
double FindBoundaryBucket(const ExpWeights& weights, double target, Nucleus* nucleus) {
  // Two histograms, even and odd ids, so that neighbours in one bucket do not wait on each other.
  // They are all zeros between calls: only the buckets used are cleared after.
  thread_local std::vector<double> mass[2] = {std::vector<double>(kTopBucket + 1, 0.0),
                                              std::vector<double>(kTopBucket + 1, 0.0)};
  const int64_t n = static_cast<int64_t>(weights.w.size());
  const uint16_t* keys = nucleus->keys.data();
  uint32_t lowest_used = kTopBucket;
  int64_t i = 0;
  for (; i + 2 <= n; i += 2) {
    mass[0][keys[i]] += weights.w[i];
    mass[1][keys[i + 1]] += weights.w[i + 1];
    lowest_used = std::min<uint32_t>(lowest_used, std::min(keys[i], keys[i + 1]));
  }
  if (i < n) {
    mass[0][keys[i]] += weights.w[i];
    lowest_used = std::min<uint32_t>(lowest_used, keys[i]);
  }
  double above = 0;
  uint32_t lowest_positive = kTopBucket;
  bool reached = false;
  for (int64_t b = kTopBucket; b > 0 && !reached; --b) {
    const double in_bucket = mass[0][b] + mass[1][b];
    if (in_bucket == 0) continue;
    lowest_positive = static_cast<uint32_t>(b);
    if (above + in_bucket >= target) {
      reached = true;
    } else {
      above += in_bucket;
    }
  }
  // Not reached only through rounding: then the nucleus is every id with weight.
  if (!reached) above -= mass[0][lowest_positive] + mass[1][lowest_positive];
  for (auto& m : mass) std::fill(m.begin() + lowest_used, m.end(), 0.0);
  nucleus->bucket = lowest_positive;
  return above;
}

}  // namespace

int32_t DrawInIdOrder(const ExpWeights& weights, double r) {
  const int64_t blocks = static_cast<int64_t>(weights.block_sums.size());
  const int64_t n = static_cast<int64_t>(weights.w.size());
  double cumulative = 0;
  int64_t b = 0;
  for (; b < blocks && r >= cumulative + weights.block_sums[b]; ++b) cumulative += weights.block_sums[b];
  // Within the block; past it only where its sum rounded differently from this scan.
  for (int64_t i = b * ExpWeights::kBlock; i < n; ++i) {
    cumulative += weights.w[i];
    if (r < cumulative) return static_cast<int32_t>(i);
  }
  return LastPositive(weights.w);
}

void FindNucleus(const float* logits, const ExpWeights& weights, double top_p, Nucleus* nucleus) {
  // The mass in each bucket, then buckets from the top until the mass reaches the target: only
  // the bucket where it does needs its members ordered.
  ComputeKeys(weights.w, &nucleus->keys);
  const double target = top_p * weights.total;
  const double above = FindBoundaryBucket(weights, target, nucleus);
  // One pass: the weight above the boundary per block (for the draw) and the boundary's members.
  const int64_t n = static_cast<int64_t>(weights.w.size());
  const int64_t blocks = static_cast<int64_t>(weights.block_sums.size());
  nucleus->block_sums.assign(blocks, 0.0);
  nucleus->boundary_ids.clear();
  const __m256i bucket = _mm256_set1_epi32(static_cast<int32_t>(nucleus->bucket));
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t end = std::min(n, (b + 1) * ExpWeights::kBlock);
    __m256 sum = _mm256_setzero_ps();
    int64_t i = b * ExpWeights::kBlock;
    for (; i + 8 <= end; i += 8) {
      const __m256i keys = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(nucleus->keys.data() + i)));
      const __m256 in = _mm256_castsi256_ps(_mm256_cmpgt_epi32(keys, bucket));
      sum = _mm256_add_ps(sum, _mm256_and_ps(_mm256_loadu_ps(weights.w.data() + i), in));
      const int at_boundary = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(keys, bucket)));
      for (int mask = at_boundary; mask != 0; mask &= mask - 1) nucleus->boundary_ids.push_back(static_cast<int32_t>(i + __builtin_ctz(mask)));
    }
    float lanes[8];
    _mm256_storeu_ps(lanes, sum);
    for (float l : lanes) nucleus->block_sums[b] += l;
    for (; i < end; ++i) {
      if (nucleus->keys[i] > nucleus->bucket) nucleus->block_sums[b] += weights.w[i];
      if (nucleus->keys[i] == nucleus->bucket) nucleus->boundary_ids.push_back(static_cast<int32_t>(i));
    }
  }
  std::sort(nucleus->boundary_ids.begin(), nucleus->boundary_ids.end(), Better{logits});
  double cumulative = above;
  size_t keep = 0;
  while (keep < nucleus->boundary_ids.size()) {
    cumulative += weights.w[nucleus->boundary_ids[keep++]];
    if (cumulative >= target) break;
  }
  nucleus->boundary_ids.resize(keep);
  nucleus->mass = cumulative - above;
  for (double s : nucleus->block_sums) nucleus->mass += s;
}

int32_t DrawInNucleus(const ExpWeights& weights, const Nucleus& nucleus, double r) {
  const int64_t blocks = static_cast<int64_t>(nucleus.block_sums.size());
  const int64_t n = static_cast<int64_t>(weights.w.size());
  double cumulative = 0;
  int64_t b = 0;
  for (; b < blocks && r >= cumulative + nucleus.block_sums[b]; ++b) cumulative += nucleus.block_sums[b];
  for (int64_t i = b * ExpWeights::kBlock; i < n; ++i) {
    if (nucleus.keys[i] <= nucleus.bucket) continue;
    cumulative += weights.w[i];
    if (r < cumulative) return static_cast<int32_t>(i);
  }
  for (int32_t id : nucleus.boundary_ids) {
    cumulative += weights.w[id];
    if (r < cumulative) return id;
  }
  return nucleus.boundary_ids.back();
}

}  // namespace mmx::model
