#include "worker/loaded_shard.h"

#include <sys/mman.h>

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "parallel/stage_compute_factory.h"

namespace mmx::worker {
namespace {

// Pages a weight matrix in: one read per 4 KiB page, after telling the kernel we will need it.
// Reading the pages here moves disk I/O out of the first steps and makes progress measurable.
int64_t PageIn(const kernels::WeightView& w) {
  const int64_t bytes = model::WeightBytes(w);
  if (bytes == 0) return 0;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(w.data) & ~uintptr_t{4095};
  madvise(reinterpret_cast<void*>(begin), static_cast<size_t>(bytes + (reinterpret_cast<uintptr_t>(w.data) - begin)),
          MADV_WILLNEED);
  const volatile uint8_t* p = static_cast<const uint8_t*>(w.data);
  uint8_t sink = 0;
  for (int64_t off = 0; off < bytes; off += 4096) sink ^= p[off];
  (void)sink;
  return bytes;
}

}  // namespace

absl::StatusOr<std::unique_ptr<LoadedShard>> LoadShard(const std::string& model_dir,
                                                       const plan::WorkerShard& shard,
                                                       model::ExpertDType expert_dtype,
                                                       const ProgressFn& progress, bool page_in) {
  auto loaded = std::make_unique<LoadedShard>();
  MMX_ASSIGN_OR_RETURN(loaded->checkpoint, model::Checkpoint::Open(model_dir));
  MMX_RETURN_IF_ERROR(loaded->checkpoint->ValidateAgainstConfig());
  const model::Checkpoint& ckpt = *loaded->checkpoint;
  const model::ModelConfig& c = ckpt.config();
  loaded->shard = shard;
  loaded->expert_dtype = expert_dtype;
  const bool int8 = expert_dtype == model::ExpertDType::kInt8;

  // First resolve every view (cheap, headers only) so progress has a total. Int8 experts are
  // read by their quantization instead of a page-in.
  std::vector<kernels::WeightView> to_page;
  int64_t to_quantize = 0;
  if (shard.embedding) {
    MMX_ASSIGN_OR_RETURN(kernels::WeightView e, model::LoadEmbedding(ckpt));
    loaded->embedding = e;
    to_page.push_back(e);
  }
  if (shard.attention) {
    loaded->attention = shard.attention;
    for (int l = shard.attention->begin; l < shard.attention->end; ++l) {
      MMX_ASSIGN_OR_RETURN(model::AttentionBlockWeights a, model::LoadAttentionBlock(ckpt, l));
      to_page.push_back(a.router);
      if (a.kind == model::AttentionKind::kLightning) {
        to_page.insert(to_page.end(), {a.lightning.qkv, a.lightning.gate, a.lightning.out});
      } else {
        to_page.insert(to_page.end(), {a.softmax.q, a.softmax.k, a.softmax.v, a.softmax.o});
      }
      loaded->attention_blocks.push_back(std::move(a));
    }
  }
  for (int l = 0; l < c.num_hidden_layers; ++l) {
    const std::vector<int> ids = shard.ExpertsOfLayer(l, c.num_local_experts);
    model::MoeWeights moe;
    moe.layer = l;
    moe.experts.resize(c.num_local_experts);
    if (!ids.empty()) {
      MMX_ASSIGN_OR_RETURN(moe, model::LoadExperts(ckpt, l, ids));
      for (int e : ids) {
        const model::ExpertWeights& ew = moe.experts[e];
        if (int8) {
          to_quantize += model::WeightBytes(ew.w1) + model::WeightBytes(ew.w3) + model::WeightBytes(ew.w2);
        } else {
          to_page.insert(to_page.end(), {ew.w1, ew.w3, ew.w2});
        }
      }
    }
    loaded->experts.push_back(std::move(moe));
  }
  if (shard.lm_head) {
    MMX_ASSIGN_OR_RETURN(model::TailWeights t, model::LoadTail(ckpt));
    to_page.push_back(t.lm_head);
    loaded->tail = std::move(t);
  }

  int64_t total = to_quantize, done = 0;
  for (const auto& w : to_page) total += model::WeightBytes(w);
  if (progress) progress(0, total);
  for (const auto& w : to_page) {
    done += page_in ? PageIn(w) : model::WeightBytes(w);
    if (progress) progress(done, total);
  }
  loaded->weight_bytes = done;
  if (int8) {
    for (model::MoeWeights& moe : loaded->experts) {
      model::QuantizeExperts(&moe, &loaded->int8_experts, [&](int64_t source_bytes) {
        done += source_bytes;
        if (progress) progress(done, total);
      });
    }
    for (const model::Int8Matrix& m : loaded->int8_experts) loaded->weight_bytes += m.bytes();
  }
  // Over the cores, and from the page cache after the page-in (a GPU worker reads them here).
  MMX_ASSIGN_OR_RETURN(loaded->tensor_digests, model::ComputeTensorDigests(ckpt, ckpt.TouchedTensors()));
  loaded->compute = model::MakeCpuStageCompute(loaded->weights_view());
  return loaded;
}

model::WeightsView LoadedShard::weights_view() const {
  model::WeightsView view;
  view.config = &config();
  view.embedding = embedding ? &*embedding : nullptr;
  if (attention) {
    view.first_layer = attention->begin;
    view.attention = &attention_blocks;
  }
  view.experts = &experts;
  view.tail = tail ? &*tail : nullptr;
  return view;
}

absl::Status PlaceShard(LoadedShard& shard, const model::DeviceSpec& device, kernels::ActivationPrecision precision,
                        const ProgressFn& progress) {
  if (!device.is_cuda()) return absl::OkStatus();
  MMX_ASSIGN_OR_RETURN(shard.compute, parallel::MakeStageCompute(device, shard.weights_view(), precision, progress));
  return absl::OkStatus();
}

}  // namespace mmx::worker
