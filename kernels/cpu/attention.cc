// CausalAttention in the FlashAttention style. A task is (a tile of query rows, one KV head): the
// tile's rows times the query heads sharing that KV head (the GQA group) form M query vectors,
// which walk the keys in blocks of kKeyBlock with a running max and sum per vector (online
// softmax). Per block:
//   S = Q K^T          the Gemm row kernel, K read in place from the cache (strided rows)
//   P = exp(S*scale - running max), causal entries past a row's position set to 0
//   O = O * correction + P V       a register-tiled AVX2 loop, V read in place
// so each K and V block is read once per task and reused from L1 for all M vectors. Tasks are
// handed out dynamically, longest first, because causal rows have different lengths.
// The cache is paged (KvCacheView): a key block of kKvKeyBlock rows never straddles two pages,
// so each is one strided matrix. bf16 rows are widened in registers (the Gemm row kernel's bf16
// path for K, a shift for V); sums stay fp32.
// Head dims that are not a multiple of 16 use the reference loop (on an fp32 copy of the cache).
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <vector>

#include <immintrin.h>

#include "base/bf16.h"
#include "base/status_macros.h"
#include "base/thread_pool.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/cpu/gemm_impl.h"
#include "kernels/cpu/reference.h"
#include "kernels/cpu/vec_math.h"
#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {

constexpr int kKeyBlock = static_cast<int>(kKvKeyBlock);
// Query vectors per task (rows x group heads), enough to amortise each K/V block over many.
constexpr int kMaxVectorsPerTask = 32;

// Eight V values as fp32: fp32 loaded, bf16 widened (a bf16 is an fp32's top half).
inline __m256 LoadV8(const float* v) { return _mm256_loadu_ps(v); }
inline __m256 LoadV8(const uint16_t* v) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(v)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

// acc[m, b] = acc[m, b] * corr[m] + sum_j p[m, j] * v[j, b] for RM rows m and the 16 columns
// [b0, b0 + 16); p has row stride ldp, v row stride ldv, acc row stride D. 2*RM accumulators and
// two V vectors live in registers; each V load serves RM rows.
template <int RM, class VElem>
void PvTile(const float* p, int64_t ldp, const VElem* v, int64_t ldv, int count, const float* corr, float* acc,
            int D, int b0) {
  __m256 r[RM][2];
  for (int m = 0; m < RM; ++m) {
    const __m256 c = _mm256_set1_ps(corr[m]);
    r[m][0] = _mm256_mul_ps(_mm256_loadu_ps(acc + m * D + b0), c);
    r[m][1] = _mm256_mul_ps(_mm256_loadu_ps(acc + m * D + b0 + 8), c);
  }
  for (int j = 0; j < count; ++j) {
    const __m256 v0 = LoadV8(v + j * ldv + b0), v1 = LoadV8(v + j * ldv + b0 + 8);
#pragma GCC unroll 4
    for (int m = 0; m < RM; ++m) {
      const __m256 pm = _mm256_broadcast_ss(p + m * ldp + j);
      r[m][0] = _mm256_fmadd_ps(pm, v0, r[m][0]);
      r[m][1] = _mm256_fmadd_ps(pm, v1, r[m][1]);
    }
  }
  for (int m = 0; m < RM; ++m) {
    _mm256_storeu_ps(acc + m * D + b0, r[m][0]);
    _mm256_storeu_ps(acc + m * D + b0 + 8, r[m][1]);
  }
}

template <class VElem>
void AccumulatePv(const float* p, int64_t ldp, const VElem* v, int64_t ldv, int count, const float* corr,
                  float* acc, int M, int D) {
  for (int m0 = 0; m0 < M; m0 += 4) {
    const int rm = std::min(4, M - m0);
    for (int b0 = 0; b0 < D; b0 += 16) {
      const float* pm = p + m0 * ldp;
      float* am = acc + static_cast<int64_t>(m0) * D;
      switch (rm) {
        case 4: PvTile<4>(pm, ldp, v, ldv, count, corr + m0, am, D, b0); break;
        case 3: PvTile<3>(pm, ldp, v, ldv, count, corr + m0, am, D, b0); break;
        case 2: PvTile<2>(pm, ldp, v, ldv, count, corr + m0, am, D, b0); break;
        default: PvTile<1>(pm, ldp, v, ldv, count, corr + m0, am, D, b0); break;
      }
    }
  }
}

// s[0, n) = exp(s * scale - max) with the reference's max-subtraction; returns their sum.
float ExpShifted(float* s, int n, float scale, float max) {
  const __m256 sc = _mm256_set1_ps(scale), mx = _mm256_set1_ps(max);
  __m256 sum = _mm256_setzero_ps();
  int j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = internal::Exp(_mm256_sub_ps(_mm256_mul_ps(_mm256_loadu_ps(s + j), sc), mx));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  float total = 0;
  for (float l : lanes) total += l;
  for (; j < n; ++j) total += (s[j] = std::exp(s[j] * scale - max));
  return total;
}

struct TaskScratch {
  std::vector<float> q, scores, acc, row_max, row_sum, corr;
};

// Where row `row`, KV head kvh, of a cache's blocks starts.
const char* KvRow(const void* const* blocks, const KvCacheView& kv, int64_t row, int64_t kv_stride, int64_t offset) {
  const int64_t esize = static_cast<int64_t>(DTypeSize(kv.dtype));
  return static_cast<const char*>(blocks[row / kv.block_tokens]) + ((row % kv.block_tokens) * kv_stride + offset) * esize;
}

// Query rows [i0, i1) of KV head kvh, i.e. M = (i1 - i0) * group query vectors.
void AttendTile(const AttentionShape& shape, const float* q, int64_t n, const KvCacheView& kv, int64_t total_len,
                int64_t i0, int64_t i1, int kvh, float* out) {
  thread_local TaskScratch sc;
  const int D = shape.head_dim, group = shape.num_heads / shape.num_kv_heads;
  const int64_t q_stride = static_cast<int64_t>(shape.num_heads) * D;
  const int64_t kv_stride = static_cast<int64_t>(shape.num_kv_heads) * D;
  const int M = static_cast<int>((i1 - i0) * group);
  const bool avx512 = Avx512Active();
  const int64_t chunk = avx512 ? internal::kGemmChunkAvx512 : internal::kGemmChunkAvx2;
  const int64_t ld_q = (D + chunk - 1) / chunk * chunk;
  sc.q.assign(static_cast<size_t>(M * ld_q), 0.f);
  sc.scores.resize(static_cast<size_t>(M) * kKeyBlock);
  sc.acc.assign(static_cast<size_t>(M) * D, 0.f);
  sc.row_max.assign(M, -INFINITY);
  sc.row_sum.assign(M, 0.f);
  sc.corr.resize(M);
  for (int m = 0; m < M; ++m) {  // vector m = row i0 + m / group, head kvh * group + m % group
    const float* src = q + (i0 + m / group) * q_stride + (kvh * group + m % group) * D;
    float* dst = &sc.q[m * ld_q];
    if (kv.dtype != DType::kBF16) {
      std::memcpy(dst, src, static_cast<size_t>(D) * sizeof(float));
      continue;
    }
    // The row kernel's layout for bf16 weights: each chunk's even columns, then its odd ones.
    for (int64_t k = 0; k < D; ++k) {
      const int64_t base = k / chunk * chunk, j = k - base;
      dst[base + (j & 1) * (chunk / 2) + j / 2] = src[k];
    }
  }
  const int64_t first_pos = total_len - n;  // position of query row 0
  const int64_t num_keys = first_pos + i1;  // the tile's last row sees keys [0, num_keys)
  auto* rows_fn = avx512 ? &internal::GemmRowsAvx512 : &internal::GemmRowsAvx2;
  for (int64_t j0 = 0; j0 < num_keys; j0 += kKeyBlock) {
    const int count = static_cast<int>(std::min<int64_t>(kKeyBlock, num_keys - j0));
    const char* kh = KvRow(kv.key_blocks, kv, j0, kv_stride, int64_t{kvh} * D);
    const char* vh = KvRow(kv.value_blocks, kv, j0, kv_stride, int64_t{kvh} * D);
    internal::GemmArgs args;
    args.x = sc.q.data();
    args.ldx = ld_q;
    args.num_tokens = M;
    args.w = WeightView{kh, kv.dtype, count, D};
    args.ldw = kv_stride;
    args.y = sc.scores.data();  // [M, count]
    rows_fn(args, 0, count);
    for (int m = 0; m < M; ++m) {
      float* s = sc.scores.data() + static_cast<int64_t>(m) * count;
      // Keys this vector may see in the block: up to its own position.
      const int valid = static_cast<int>(std::clamp<int64_t>(first_pos + i0 + m / group - j0 + 1, 0, count));
      if (valid == 0) {  // nothing new for this row: keep its state, contribute nothing
        std::fill(s, s + count, 0.f);
        sc.corr[m] = 1.f;
        continue;
      }
      float block_max = s[0];
      for (int j = 1; j < valid; ++j) block_max = std::max(block_max, s[j]);
      const float new_max = std::max(sc.row_max[m], block_max * shape.scale);
      // exp(-inf) = 0 on a row's first block, when its acc and sum are still 0.
      sc.corr[m] = std::exp(sc.row_max[m] - new_max);
      sc.row_sum[m] = sc.row_sum[m] * sc.corr[m] + ExpShifted(s, valid, shape.scale, new_max);
      sc.row_max[m] = new_max;
      std::fill(s + valid, s + count, 0.f);
    }
    if (kv.dtype == DType::kBF16) {
      AccumulatePv(sc.scores.data(), count, reinterpret_cast<const uint16_t*>(vh), kv_stride, count, sc.corr.data(),
                   sc.acc.data(), M, D);
    } else {
      AccumulatePv(sc.scores.data(), count, reinterpret_cast<const float*>(vh), kv_stride, count, sc.corr.data(),
                   sc.acc.data(), M, D);
    }
  }
  for (int m = 0; m < M; ++m) {
    float* o = out + (i0 + m / group) * q_stride + (kvh * group + m % group) * D;
    const float inv = 1.f / sc.row_sum[m];
    for (int d = 0; d < D; ++d) o[d] = sc.acc[static_cast<int64_t>(m) * D + d] * inv;
  }
}

// The cache's rows [0, total_len) as contiguous fp32 (the reference loop's input).
void GatherFp32(const void* const* blocks, const KvCacheView& kv, int64_t total_len, int64_t kv_stride,
                std::vector<float>& out) {
  out.resize(static_cast<size_t>(total_len * kv_stride));
  for (int64_t r = 0; r < total_len; ++r) {
    const char* row = KvRow(blocks, kv, r, kv_stride, 0);
    float* dst = out.data() + r * kv_stride;
    if (kv.dtype == DType::kBF16) {
      const uint16_t* src = reinterpret_cast<const uint16_t*>(row);
      for (int64_t i = 0; i < kv_stride; ++i) dst[i] = Bf16ToFloat(src[i]);
    } else {
      std::memcpy(dst, row, static_cast<size_t>(kv_stride) * sizeof(float));
    }
  }
}

}  // namespace

void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const KvCacheView& kv,
                     int64_t total_len, float* out) {
  if (n <= 0) return;
  MMX_CHECK(kv.block_tokens > 0 && kv.block_tokens % kKvKeyBlock == 0);
  MMX_CHECK(kv.dtype == DType::kF32 || kv.dtype == DType::kBF16);
  if (shape.head_dim % 16 != 0) {
    const int64_t kv_stride = static_cast<int64_t>(shape.num_kv_heads) * shape.head_dim;
    std::vector<float> k, v;
    GatherFp32(kv.key_blocks, kv, total_len, kv_stride, k);
    GatherFp32(kv.value_blocks, kv, total_len, kv_stride, v);
    reference::CausalAttention(shape, q, n, k.data(), v.data(), total_len, out);
    return;
  }
  const int group = shape.num_heads / shape.num_kv_heads;
  const int64_t rows_per_task = std::clamp<int64_t>(kMaxVectorsPerTask / group, 1, n);
  const int64_t num_tiles = (n + rows_per_task - 1) / rows_per_task;
  const int64_t num_tasks = num_tiles * shape.num_kv_heads;
  // Task t: tile t / num_kv_heads (the last tiles, the longest rows, come first), KV head t % num_kv_heads.
  auto run = [&](int64_t t) {
    const int64_t tile = num_tiles - 1 - t / shape.num_kv_heads;
    AttendTile(shape, q, n, kv, total_len, tile * rows_per_task, std::min(n, (tile + 1) * rows_per_task),
               static_cast<int>(t % shape.num_kv_heads), out);
  };
  // Work in multiply-adds; below the threshold the pool's wake-up costs more than it saves.
  const int64_t work = n * total_len * shape.num_heads * shape.head_dim;
  ThreadPool& pool = ThreadPool::Default();
  if (work < (1 << 16) || num_tasks == 1 || pool.num_threads() == 1) {
    for (int64_t t = 0; t < num_tasks; ++t) run(t);
    return;
  }
  std::atomic<int64_t> next{0};
  pool.RunOnAll([&](int) {
    for (int64_t t; (t = next.fetch_add(1, std::memory_order_relaxed)) < num_tasks;) run(t);
  });
}

void CausalAttention(const AttentionShape& shape, const float* q, int64_t n, const float* k,
                     const float* v, int64_t total_len, float* out) {
  // One block holding every row.
  const void* key_block = k;
  const void* value_block = v;
  KvCacheView kv;
  kv.dtype = DType::kF32;
  kv.block_tokens = std::max<int64_t>(1, (total_len + kKvKeyBlock - 1) / kKvKeyBlock) * kKvKeyBlock;
  kv.key_blocks = &key_block;
  kv.value_blocks = &value_block;
  CausalAttention(shape, q, n, kv, total_len, out);
}

}  // namespace mmx::kernels
