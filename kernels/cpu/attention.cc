// CausalAttention, AVX2, in the FlashAttention style: one task per (query row, KV head) walks the
// keys in blocks of kKeyBlock, keeps a running max and sum per query head (online softmax,
// rescaling when the max grows) and accumulates P V in fp32. All query heads that share the KV
// head (the GQA group) are done in the same task, so each K and V block is read from memory once
// for the group and reused from L1. Tasks are handed out dynamically because causal rows have
// different lengths. Head dims that are not a multiple of 8 use the reference loop.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <vector>

#include <immintrin.h>

#include "base/thread_pool.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {

constexpr int kKeyBlock = 64;
// Column tile of the P V accumulation, in 8-float vectors: 8 accumulators stay in registers.
constexpr int kPvVectors = 8;

// out[c] = sum of the 8 lanes of v[c], c < 4.
inline __m128 Sum4(__m256 v0, __m256 v1, __m256 v2, __m256 v3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(v0, v1), _mm256_hadd_ps(v2, v3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// s[j] = scale * dot(q, k_j) for j < count; k_j at k + j * ld.
void Scores(const float* q, const float* k, int64_t ld, int count, int D, float scale, float* s) {
  int j = 0;
  for (; j + 4 <= count; j += 4) {
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    const float* k0 = k + j * ld;
    for (int d = 0; d < D; d += 8) {
      const __m256 qv = _mm256_loadu_ps(q + d);
      a0 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + d), a0);
      a1 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + ld + d), a1);
      a2 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 2 * ld + d), a2);
      a3 = _mm256_fmadd_ps(qv, _mm256_loadu_ps(k0 + 3 * ld + d), a3);
    }
    _mm_storeu_ps(s + j, _mm_mul_ps(Sum4(a0, a1, a2, a3), _mm_set1_ps(scale)));
  }
  for (; j < count; ++j) {
    __m256 a = _mm256_setzero_ps();
    for (int d = 0; d < D; d += 8) a = _mm256_fmadd_ps(_mm256_loadu_ps(q + d), _mm256_loadu_ps(k + j * ld + d), a);
    const __m128 h = Sum4(a, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps());
    s[j] = _mm_cvtss_f32(h) * scale;
  }
}

// acc[0, D) = acc * corr + sum_j p[j] * v_j, v_j at v + j * ld.
void AccumulatePv(const float* p, const float* v, int64_t ld, int count, int D, float corr, float* acc) {
  const __m256 c = _mm256_set1_ps(corr);
  for (int b0 = 0; b0 < D; b0 += 8 * kPvVectors) {
    const int nv = std::min(kPvVectors, (D - b0) / 8);
    __m256 r[kPvVectors];
    for (int t = 0; t < kPvVectors; ++t) r[t] = t < nv ? _mm256_mul_ps(_mm256_loadu_ps(acc + b0 + 8 * t), c) : c;
    if (nv == kPvVectors) {
      for (int j = 0; j < count; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* vj = v + j * ld + b0;
#pragma GCC unroll 8
        for (int t = 0; t < kPvVectors; ++t) r[t] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * t), r[t]);
      }
    } else {
      for (int j = 0; j < count; ++j) {
        const __m256 pj = _mm256_set1_ps(p[j]);
        const float* vj = v + j * ld + b0;
        for (int t = 0; t < nv; ++t) r[t] = _mm256_fmadd_ps(pj, _mm256_loadu_ps(vj + 8 * t), r[t]);
      }
    }
    for (int t = 0; t < nv; ++t) _mm256_storeu_ps(acc + b0 + 8 * t, r[t]);
  }
}

// One query row i against its causal prefix, for the `group` query heads of KV head kvh.
void AttendRow(const AttentionShape& shape, const float* q, int64_t n, const float* k, const float* v,
               int64_t total_len, int64_t i, int kvh, float* out) {
  const int D = shape.head_dim, group = shape.num_heads / shape.num_kv_heads;
  const int64_t q_stride = static_cast<int64_t>(shape.num_heads) * D;
  const int64_t kv_stride = static_cast<int64_t>(shape.num_kv_heads) * D;
  const int64_t num_keys = total_len - n + i + 1;
  thread_local std::vector<float> acc, scores;
  acc.assign(static_cast<size_t>(group) * D, 0.f);
  scores.resize(static_cast<size_t>(group) * kKeyBlock);
  std::vector<float> row_max(group, -INFINITY), row_sum(group, 0.f);
  const float* kh = k + kvh * D;
  const float* vh = v + kvh * D;
  for (int64_t j0 = 0; j0 < num_keys; j0 += kKeyBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kKeyBlock, num_keys - j0));
    for (int g = 0; g < group; ++g) {
      const int h = kvh * group + g;
      float* s = scores.data() + g * kKeyBlock;
      Scores(q + i * q_stride + h * D, kh + j0 * kv_stride, kv_stride, count, D, shape.scale, s);
      float block_max = s[0];
      for (int j = 1; j < count; ++j) block_max = std::max(block_max, s[j]);
      const float new_max = std::max(row_max[g], block_max);
      // exp(-inf) = 0 on the first block, when acc and row_sum are still 0.
      const float corr = std::exp(row_max[g] - new_max);
      const __m256 mv = _mm256_set1_ps(new_max);
      __m256 sum = _mm256_setzero_ps();
      int j = 0;
      for (; j + 8 <= count; j += 8) {
        const __m256 e = internal::Exp(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
        _mm256_storeu_ps(s + j, e);
        sum = _mm256_add_ps(sum, e);
      }
      float block_sum = _mm_cvtss_f32(Sum4(sum, _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()));
      for (; j < count; ++j) block_sum += (s[j] = std::exp(s[j] - new_max));
      row_sum[g] = row_sum[g] * corr + block_sum;
      row_max[g] = new_max;
      AccumulatePv(s, vh + j0 * kv_stride, kv_stride, count, D, corr, acc.data() + g * D);
    }
  }
  for (int g = 0; g < group; ++g) {
    float* o = out + i * q_stride + (kvh * group + g) * D;
    const float inv = 1.f / row_sum[g];
    for (int d = 0; d < D; ++d) o[d] = acc[g * D + d] * inv;
  }
}

}  // namespace

void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k,
                     const float* v, int64_t total_len, float* out) {
  if (n <= 0) return;
  if (shape.head_dim % 8 != 0) {
    reference::CausalAttention(shape, q, n, k, v, total_len, out);
    return;
  }
  const int64_t num_tasks = n * shape.num_kv_heads;
  auto run = [&](int64_t task) {
    AttendRow(shape, q, n, k, v, total_len, task / shape.num_kv_heads, static_cast<int>(task % shape.num_kv_heads),
              out);
  };
  // Work in multiply-adds; below the threshold the pool's wake-up costs more than it saves.
  const int64_t work = n * total_len * shape.num_heads * shape.head_dim;
  ThreadPool& pool = ThreadPool::Default();
  if (work < (1 << 16) || num_tasks == 1 || pool.num_threads() == 1) {
    for (int64_t t = 0; t < num_tasks; ++t) run(t);
    return;
  }
  // Dynamic hand-out, last rows first: they are the longest, so the tail of the schedule is
  // made of short tasks.
  std::atomic<int64_t> next{0};
  pool.RunOnAll([&](int) {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < num_tasks;) run(num_tasks - 1 - t);
  });
}

}  // namespace mmx::kernels
