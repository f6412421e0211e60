// The planner's invariants over many random clusters, and the choices it makes on small ones.
#include "plan/planner.h"

#include <cstdio>
#include <random>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "plan/attention_partition.h"
#include "plan/expert_placement.h"
#include "plan/layout.h"
#include "plan/model_sizes.h"
#include "plan/plan_report.h"
#include "plan/shard_config.h"
#include "tests/plan/plan_test_util.h"
#include "tests/testing/status_matchers.h"

namespace mmx::plan {
namespace {

using ::mmx::testing::IsOk;
using ::testing::AnyOf;
using ::testing::HasSubstr;
using testing::BenchConfig;
using testing::Homogeneous;
using testing::RealConfig;
using testing::TinyConfig;
using testing::Worker;

// A random cluster: 1-4 groups of 1-3 workers, memory from too small to plenty for the bench
// model (about 7 GB of weights), devices and figures spread over two orders of magnitude.
ClusterSpec RandomCluster(std::mt19937_64& rng) {
  auto uniform = [&](double lo, double hi) { return std::uniform_real_distribution<double>(lo, hi)(rng); };
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  ClusterSpec c;
  const int groups = 1 + pick(4);
  for (int g = 0; g < groups; ++g) {
    const int count = 1 + pick(3);
    const DeviceKind device = pick(3) == 0 ? DeviceKind::kCpu : DeviceKind::kCuda;
    WorkerSpec w = Worker("", uniform(1.5, 5), uniform(20, 3000), uniform(0.5, 1000), uniform(1, 400), device);
    w.network_latency_us = uniform(0, 30);
    if (pick(2) == 0) w.price_per_hour = uniform(0.1, 4);
    w.group = absl::StrCat("g", g);
    for (int i = 0; i < count; ++i) {
      w.name = count > 1 ? absl::StrCat(w.group, "-", i) : w.group;
      c.workers.push_back(w);
    }
  }
  const int64_t contexts[] = {256, 4096, 32768};
  c.serving.max_context = contexts[pick(3)];
  c.serving.max_sequences = 1 + pick(32);
  c.serving.expert_dtype = pick(2) == 0 ? "bf16" : "int8";
  return c;
}

// `cluster` with one fix applied.
ClusterSpec Apply(ClusterSpec cluster, const ShortfallFix& fix) {
  for (int64_t i = 0; i < fix.more_workers; ++i) {
    WorkerSpec extra = cluster.workers[fix.like_worker];
    extra.name = absl::StrCat(extra.name, "-fix-", i);
    cluster.workers.push_back(extra);
  }
  if (fix.int8_experts) cluster.serving.expert_dtype = "int8";
  if (fix.max_context > 0) cluster.serving.max_context = fix.max_context;
  if (fix.max_sequences > 0) cluster.serving.max_sequences = fix.max_sequences;
  return cluster;
}

bool CheckInvariants(const model::ModelConfig& config, const ClusterSpec& cluster, const std::string& what);

// A cluster that does not fit: the shortfall says how much and what to change, and each change
// it names makes it fit (with a plan that meets every invariant), the fewest workers that do.
void CheckShortfall(const model::ModelConfig& config, const ClusterSpec& cluster, const PlanResult& result) {
  EXPECT_THAT(result.shortfall, AnyOf(HasSubstr("more memory"), HasSubstr("more than the largest worker"),
                                      HasSubstr("to spare in total")));
  EXPECT_THAT(result.shortfall, AnyOf(HasSubstr("smallest fix: "), HasSubstr("no single change")));
  EXPECT_EQ(result.fixes.empty(), result.shortfall.find("no single change") != std::string::npos);
  for (const ShortfallFix& fix : result.fixes) {
    EXPECT_TRUE(CheckInvariants(config, Apply(cluster, fix), "with the fix")) << result.shortfall;
    if (fix.more_workers > 1) {
      ShortfallFix fewer = fix;
      --fewer.more_workers;
      EXPECT_FALSE(Plan(config, Apply(cluster, fewer), "/models/m").fits) << "a smaller fix fits: " << result.shortfall;
    }
  }
}

// Checks one plan; returns whether it fits.
bool CheckInvariants(const model::ModelConfig& config, const ClusterSpec& cluster, const std::string& what) {
  SCOPED_TRACE(what);
  const PlanResult result = Plan(config, cluster, "/models/m");
  const int L = config.num_hidden_layers, E = config.num_local_experts;
  if (!result.fits) {
    if (what != "with the fix") CheckShortfall(config, cluster, result);
    return false;
  }
  // The runtime accepts it.
  EXPECT_THAT(ValidateShardConfig(result.shard, config), IsOk());
  // Every layer's attention exactly once in each attention group, every pair at least once.
  const int G = result.layout.num_groups;
  EXPECT_EQ(result.num_groups, G);
  EXPECT_GE(G, 1);
  for (int l = 0; l < L; ++l) {
    for (int g = 0; g < G; ++g) {
      int owners = 0;
      for (const WorkerRoles& w : result.layout.workers) {
        owners += w.group == g && w.attention && w.attention->Contains(l) ? 1 : 0;
      }
      EXPECT_EQ(owners, 1) << "layer " << l << " in group " << g;
    }
    for (int e = 0; e < E; ++e) {
      int holders = 0;
      for (const WorkerRoles& w : result.layout.workers) holders += w.Holds(l, e, E) ? 1 : 0;
      EXPECT_GE(holders, 1) << "layer " << l << " expert " << e;
    }
  }
  // In each group: stages in spec order, the embedding on the first (layer 0's owner), lm_head on
  // the last. Groups are worth their cost: more tokens/s than one group by over 5%.
  for (int g = 0; g < G; ++g) {
    for (int l = 1; l < L; ++l) {
      EXPECT_LE(result.layout.AttentionOwner(l - 1, g), result.layout.AttentionOwner(l, g)) << l << " in group " << g;
    }
    EXPECT_EQ(result.layout.Holder(&WorkerRoles::embedding, g), result.layout.AttentionOwner(0, g));
    EXPECT_EQ(result.layout.Holder(&WorkerRoles::lm_head, g), result.layout.AttentionOwner(L - 1, g));
  }
  if (G > 1) {
    EXPECT_GT(result.prediction.tokens_per_s, result.one_group_tokens_per_s * 1.05);
  }
  // The placement before replicas (docs/capacity-planning.md step 3): every host holds floor or
  // ceil of its share in every layer, in at most three blocks of the shard config.
  const PlanResult placed = Plan(config, cluster, "/models/m", PlanOptions{.replicas = false});
  EXPECT_TRUE(placed.fits);
  for (size_t w = 0; w < placed.layout.workers.size(); ++w) {
    int lo = E, hi = 0;
    for (int l = 0; l < L; ++l) {
      int held = 0;
      for (int e = 0; e < E; ++e) held += placed.layout.workers[w].Holds(l, e, E) ? 1 : 0;
      lo = std::min(lo, held);
      hi = std::max(hi, held);
    }
    EXPECT_LE(hi - lo, 1) << cluster.workers[w].name << " holds " << lo << " to " << hi << " experts per layer";
  }
  for (const WorkerShard& w : placed.shard.workers) EXPECT_LE(w.experts.size(), 3u) << w.name;
  // No worker over its capacity.
  const CostModel cost(ComputeModelSizes(config), cluster);
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    const WorkerMemory m = cost.Memory(result.layout)[w];
    EXPECT_LE(m.total(), m.usable) << cluster.workers[w].name;
  }
  EXPECT_TRUE(result.prediction.fits());
  EXPECT_GT(result.prediction.tokens_per_s, 0);
  // The shard config says exactly what the layout says.
  auto parsed = ParseShardConfig(ShardConfigToYaml(result.shard));
  EXPECT_THAT(parsed, IsOk());
  if (!parsed.ok()) return true;
  auto again = LayoutFromShardConfig(*parsed, cluster, L, E);
  EXPECT_THAT(again, IsOk());
  if (!again.ok()) return true;
  EXPECT_EQ(again->num_groups, G);
  for (size_t w = 0; w < cluster.workers.size(); ++w) {
    EXPECT_EQ(again->workers[w].experts, result.layout.workers[w].experts);
    EXPECT_EQ(again->workers[w].attention, result.layout.workers[w].attention);
    if (result.layout.workers[w].attention) {
      EXPECT_EQ(again->workers[w].group, result.layout.workers[w].group);
    }
  }
  return true;
}

TEST(PlannerTest, InvariantsHoldOnRandomClusters) {
  std::mt19937_64 rng(20250104);
  const model::ModelConfig bench = BenchConfig(), tiny = TinyConfig();
  int fits = 0, grouped = 0;
  for (int i = 0; i < 200; ++i) {
    const ClusterSpec cluster = RandomCluster(rng);
    const model::ModelConfig& config = i % 4 == 0 ? tiny : bench;
    fits += CheckInvariants(config, cluster, absl::StrCat("cluster ", i)) ? 1 : 0;
    if (::testing::Test::HasFailure()) return;  // one broken cluster is enough to read
    grouped += Plan(config, cluster, "/models/m").num_groups > 1 ? 1 : 0;
  }
  // The generator covers both outcomes, and plans with attention groups among those that fit.
  EXPECT_GT(fits, 50) << "of 200";
  EXPECT_LT(fits, 150) << "of 200";
  EXPECT_GT(grouped, 0) << "of " << fits << " that fit";
  EXPECT_LT(grouped, fits);
  std::printf("%d of 200 fit, %d of them with attention groups\n", fits, grouped);
}

TEST(PlannerTest, DeterministicOutput) {
  std::mt19937_64 rng(7);
  const model::ModelConfig config = BenchConfig();
  for (int i = 0; i < 20; ++i) {
    const ClusterSpec cluster = RandomCluster(rng);
    const PlanResult a = Plan(config, cluster, "m"), b = Plan(config, cluster, "m");
    ASSERT_EQ(a.fits, b.fits);
    EXPECT_EQ(ShardConfigToYaml(a.shard), ShardConfigToYaml(b.shard));
    EXPECT_EQ(a.shortfall, b.shortfall);
    const ReportContext context{"m", "c.yaml", "", false};
    EXPECT_EQ(ReportText(config, cluster, a, context), ReportText(config, cluster, b, context));
    EXPECT_EQ(ReportJson(config, cluster, a, context), ReportJson(config, cluster, b, context));
  }
}

TEST(PlannerTest, FasterStagesGetMoreLayers) {
  // A short context, so that weights (not the two softmax layers' KV caches) set the pace.
  const model::ModelConfig config = BenchConfig();
  ClusterSpec c;
  c.workers = {Worker("slow", 64, 500), Worker("fast", 64, 1500)};
  c.serving.max_context = 256;
  const CostModel cost(ComputeModelSizes(config), c);
  const auto ranges = PartitionLayers(cost, {0, 1});
  ASSERT_TRUE(ranges.has_value());
  const int slow = (*ranges)[0].end - (*ranges)[0].begin, fast = (*ranges)[1].end - (*ranges)[1].begin;
  EXPECT_EQ(slow + fast, config.num_hidden_layers);
  EXPECT_GT(fast, 2 * slow);
}

TEST(PlannerTest, MemoryCapsAStageEvenWhenItIsFast) {
  const model::ModelConfig config = BenchConfig();
  ServingSpec serving;
  serving.max_context = 32768;
  serving.max_sequences = 32;  // 5.4 GB of KV per softmax layer: one per small worker at most
  ClusterSpec c;
  c.workers = {Worker("fast-small", 9, 5000), Worker("slow-big", 200, 100)};
  c.serving = serving;
  const CostModel cost(ComputeModelSizes(config), c);
  const auto ranges = PartitionLayers(cost, {0, 1});
  ASSERT_TRUE(ranges.has_value());
  Layout layout = Layout::Empty(config.num_hidden_layers, config.num_local_experts, 2);
  layout.workers[0].attention = (*ranges)[0];
  layout.workers[0].embedding = true;
  EXPECT_LE(cost.Memory(layout)[0].total(), cost.UsableBytes(0));
  EXPECT_LT((*ranges)[0].end, config.num_hidden_layers);
}

TEST(PlannerTest, ExpertsGoWhereBandwidthIs) {
  const model::ModelConfig config = BenchConfig();
  ClusterSpec c;
  c.workers = {Worker("stage", 64, 2000), Worker("fast-host", 16, 2000), Worker("slow-host", 16, 500)};
  const CostModel cost(ComputeModelSizes(config), c);
  Layout layout = Layout::Empty(config.num_hidden_layers, config.num_local_experts, 3);
  layout.workers[0].attention = LayerRange{0, config.num_hidden_layers};
  layout.workers[0].embedding = layout.workers[0].lm_head = true;
  ASSERT_TRUE(PlaceExperts(cost, &layout));
  // Equal speed, equal share; a quarter of the bandwidth (plus the same NIC), under a third.
  EXPECT_NEAR(layout.workers[0].NumExperts(), layout.workers[1].NumExperts(), 1);
  EXPECT_GT(layout.workers[1].NumExperts(), 2 * layout.workers[2].NumExperts());
  EXPECT_GT(layout.workers[2].NumExperts(), 0);
  // Every layer is dealt evenly: each worker holds floor or ceil of its share in every layer.
  const int L = config.num_hidden_layers, E = config.num_local_experts;
  for (const WorkerRoles& w : layout.workers) {
    const int64_t n = w.NumExperts();
    for (int l = 0; l < L; ++l) {
      int64_t in_layer = 0;
      for (int e = 0; e < E; ++e) in_layer += w.Holds(l, e, E) ? 1 : 0;
      EXPECT_GE(in_layer, n / L);
      EXPECT_LE(in_layer, (n + L - 1) / L);
    }
  }
}

TEST(PlannerTest, SpareMemoryBuysReplicas) {
  const model::ModelConfig config = BenchConfig();
  const PlanResult r = Plan(config, Homogeneous(4, 64, 1000), "m");
  ASSERT_TRUE(r.fits) << r.shortfall;
  int64_t held = 0;
  for (const WorkerRoles& w : r.layout.workers) held += w.NumExperts();
  EXPECT_GT(held, int64_t{config.num_hidden_layers} * config.num_local_experts);
}

// Each GPU holds every layer's attention with room for its state: at a long context the KV reads
// dominate attention, so data-parallel groups (each reading the KV of its own sequences only) beat
// one group; at a short context every step reads the same weights and one group stays.
TEST(PlannerTest, AttentionGroupsWhereEachGpuHoldsTheAttentionAndKvReadsDominate) {
  const model::ModelConfig config = BenchConfig();
  ServingSpec serving;
  serving.max_context = 131072;
  serving.max_sequences = 32;
  const PlanResult r = Plan(config, Homogeneous(4, 80, 3350, serving), "m");
  ASSERT_TRUE(r.fits) << r.shortfall;
  EXPECT_EQ(r.num_groups, 2);
  EXPECT_EQ(r.num_stages, 1);
  EXPECT_GT(r.prediction.tokens_per_s, 1.05 * r.one_group_tokens_per_s);
  EXPECT_EQ(AttentionGroups(r.shard), (std::vector<std::string>{"g0", "g1"}));
  EXPECT_THAT(ValidateShardConfig(r.shard, config), IsOk());
  const ReportContext context{"m", "c.yaml", "", false};
  EXPECT_THAT(ReportText(config, Homogeneous(4, 80, 3350, serving), r, context),
              HasSubstr("Fits: yes (2 attention groups of 1 stages, sharing the experts)"));

  serving.max_context = 4096;
  const PlanResult short_context = Plan(config, Homogeneous(4, 80, 3350, serving), "m");
  ASSERT_TRUE(short_context.fits);
  EXPECT_EQ(short_context.num_groups, 1);
  EXPECT_TRUE(AttentionGroups(short_context.shard).size() == 1 && AttentionGroups(short_context.shard)[0].empty());
  // Asked not to, the planner keeps one group.
  serving.max_context = 131072;
  EXPECT_EQ(Plan(config, Homogeneous(4, 80, 3350, serving), "m", PlanOptions{.groups = false}).num_groups, 1);
}

TEST(PlannerTest, ShortfallNamesTheAmountAndTheFixes) {
  // 4 x 2.5 GiB (1.4 GiB usable each) cannot hold the bench model's 6.9 GiB of weights.
  const model::ModelConfig config = BenchConfig();
  ServingSpec serving;
  serving.max_context = 4096;
  serving.max_sequences = 4;
  const PlanResult r = Plan(config, Homogeneous(4, 2.5, 1000, serving), "m");
  ASSERT_FALSE(r.fits);
  EXPECT_GT(r.short_bytes, 0);
  EXPECT_THAT(r.shortfall, HasSubstr(absl::StrCat("needs ", FormatGiB(r.short_bytes), " more memory")));
  EXPECT_THAT(r.shortfall, HasSubstr("smallest fix: "));
  EXPECT_THAT(r.shortfall, HasSubstr("more 2.5 GiB workers (like w-0)"));
}

TEST(PlannerTest, RealModelOnSixteenH100sFits) {
  ClusterSpec c = Homogeneous(16, 80, 3350);
  const PlanResult r = Plan(RealConfig(), c, "/models/minimax-text-01");
  ASSERT_TRUE(r.fits) << r.shortfall;
  EXPECT_THAT(ValidateShardConfig(r.shard, RealConfig()), IsOk());
  EXPECT_EQ(r.shard.model, "/models/minimax-text-01");
}

TEST(PlannerTest, RealModelOnEightH100sNeedsInt8AndShorterContext) {
  const PlanResult bf16 = Plan(RealConfig(), Homogeneous(8, 80, 3350), "m");
  ASSERT_FALSE(bf16.fits);
  EXPECT_THAT(bf16.shortfall, HasSubstr("needs 421.1 GiB more memory"));
  EXPECT_THAT(bf16.shortfall, HasSubstr("smallest fix: 6 more 80 GiB workers (like w-0)"));
  ServingSpec int8;
  int8.expert_dtype = "int8";
  int8.max_context = 32768;
  EXPECT_TRUE(Plan(RealConfig(), Homogeneous(8, 80, 3350, int8), "m").fits);
}

}  // namespace
}  // namespace mmx::plan
