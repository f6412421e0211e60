// The paged KV cache (model/kv_cache.h): rows come back as stored (exactly in fp32, rounded to
// bf16 once in bf16), a growing cache never moves its old rows, freed blocks are handed out again,
// and a sequence's bytes are whole blocks, as model/state_bytes.h counts them.
#include "model/kv_cache.h"

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "base/bf16.h"
#include "gtest/gtest.h"
#include "model/sequence_state.h"
#include "model/state_bytes.h"

namespace mmx::model {
namespace {

std::vector<float> Random(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.f, 3.f);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = dist(rng);
  return v;
}

TEST(PagedKvTest, RowsComeBackAsStoredAcrossBlocksInFp32AndBf16) {
  constexpr int64_t kWidth = 48;
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    PagedKv kv(kWidth, dtype);
    const std::vector<float> k = Random(200 * kWidth, 1), v = Random(200 * kWidth, 2);
    int64_t appended = 0;
    for (const int64_t n : {1, 62, 1, 1, 100, 35}) {  // across the 64-row block boundaries
      kv.Append(k.data() + appended * kWidth, v.data() + appended * kWidth, n);
      appended += n;
    }
    ASSERT_EQ(kv.rows(), 200);
    std::vector<float> kr(kWidth), vr(kWidth);
    for (int64_t r = 0; r < 200; ++r) {
      kv.ReadRow(r, kr.data(), vr.data());
      for (int64_t j = 0; j < kWidth; ++j) {
        const float want_k = k[r * kWidth + j], want_v = v[r * kWidth + j];
        EXPECT_EQ(kr[j], dtype == DType::kF32 ? want_k : Bf16ToFloat(FloatToBf16(want_k))) << r << "," << j;
        EXPECT_EQ(vr[j], dtype == DType::kF32 ? want_v : Bf16ToFloat(FloatToBf16(want_v))) << r << "," << j;
      }
    }
    // Four blocks of 64 rows, K and V.
    EXPECT_EQ(kv.bytes(), 2 * 4 * kKvBlockTokens * kWidth * static_cast<int64_t>(DTypeSize(dtype)));
  }
}

TEST(PagedKvTest, GrowingNeverMovesTheRowsAlreadyHeld) {
  PagedKv kv(16, DType::kBF16);
  const std::vector<float> rows = Random(16 * 1000, 3);
  kv.Append(rows.data(), rows.data(), 64);
  const kernels::KvCacheView before = kv.view();
  const void* first_key_block = before.key_blocks[0];
  const void* first_value_block = before.value_blocks[0];
  for (int i = 64; i < 1000; ++i) kv.Append(rows.data() + i * 16, rows.data() + i * 16, 1);
  const kernels::KvCacheView after = kv.view();
  EXPECT_EQ(after.key_blocks[0], first_key_block);
  EXPECT_EQ(after.value_blocks[0], first_value_block);
  EXPECT_EQ(after.block_tokens, kKvBlockTokens);
  EXPECT_EQ(after.dtype, DType::kBF16);
}

TEST(PagedKvTest, FreedBlocksAreHandedOutAgain) {
  // A width no other test uses: this pool is this test's alone.
  constexpr int64_t kWidth = 40;
  std::shared_ptr<KvBlockPool> pool =
      KvBlockPool::ForBlockBytes(static_cast<size_t>(kKvBlockTokens * kWidth) * sizeof(float));
  const std::vector<float> rows = Random(kWidth * 130, 4);
  std::vector<const void*> first_blocks;
  {
    PagedKv kv(kWidth, DType::kF32);
    kv.Append(rows.data(), rows.data(), 130);  // three blocks each for K and V
    EXPECT_EQ(pool->blocks_in_use(), 6);
    const kernels::KvCacheView view = kv.view();
    first_blocks.assign(view.key_blocks, view.key_blocks + 3);
    first_blocks.insert(first_blocks.end(), view.value_blocks, view.value_blocks + 3);
  }
  EXPECT_EQ(pool->blocks_in_use(), 0);
  EXPECT_EQ(pool->blocks_free(), 6);
  PagedKv again(kWidth, DType::kF32);
  again.Append(rows.data(), rows.data(), 1);
  EXPECT_EQ(pool->blocks_free(), 4);  // taken from the free list, none allocated
  bool reused = false;
  for (const void* b : first_blocks) reused = reused || b == again.view().key_blocks[0];
  EXPECT_TRUE(reused);
}

TEST(PagedKvTest, MovedCachesGiveTheirBlocksBackOnce) {
  constexpr int64_t kWidth = 24;
  std::shared_ptr<KvBlockPool> pool =
      KvBlockPool::ForBlockBytes(static_cast<size_t>(kKvBlockTokens * kWidth) * DTypeSize(DType::kBF16));
  const std::vector<float> rows = Random(kWidth * 10, 5);
  {
    PagedKv a(kWidth, DType::kBF16);
    a.Append(rows.data(), rows.data(), 10);
    PagedKv b = std::move(a);
    PagedKv c(kWidth, DType::kBF16);
    c = std::move(b);
    EXPECT_EQ(pool->blocks_in_use(), 2);
    EXPECT_EQ(c.rows(), 10);
  }
  EXPECT_EQ(pool->blocks_in_use(), 0);
}

// Two lightning layers then a softmax one; 2 heads of 16, 1 KV head.
ModelConfig SmallConfig() {
  ModelConfig c;
  c.num_hidden_layers = 3;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 1;
  c.head_dim = 16;
  c.attn_type_list = {AttentionKind::kLightning, AttentionKind::kLightning, AttentionKind::kSoftmax};
  return c;
}

TEST(SequenceStateTest, HoldsWhatStateBytesCountsAtEveryLength) {
  const ModelConfig c = SmallConfig();
  for (const DType dtype : {DType::kF32, DType::kBF16}) {
    SCOPED_TRACE(DTypeName(dtype));
    SequenceState state(c, 0, 3, dtype);
    const std::vector<float> rows = Random(c.kv_width() * 300, 6);
    for (int64_t length = 0; length < 300;) {
      const int64_t n = length % 7 + 1;
      state.layer(2).kv.Append(rows.data() + length * c.kv_width(), rows.data() + length * c.kv_width(), n);
      length += n;
      ASSERT_EQ(state.bytes(), SequenceStateBytes(c, 0, 3, length, dtype)) << length;
    }
  }
}

TEST(StateBytesTest, KvDtypesParseWithAClearErrorOtherwise) {
  EXPECT_EQ(*ParseKvDType("bf16"), DType::kBF16);
  EXPECT_EQ(*ParseKvDType("fp32"), DType::kF32);
  const absl::StatusOr<DType> bad = ParseKvDType("fp16");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("bf16"), std::string::npos) << bad.status();
  EXPECT_STREQ(KvDTypeName(DType::kBF16), "bf16");
  EXPECT_STREQ(KvDTypeName(DType::kF32), "fp32");
}

}  // namespace
}  // namespace mmx::model
