#include "plan/cost_model.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "model/state_bytes.h"

namespace mmx::plan {
namespace {

double BytesPerSecond(const WorkerSpec& w) { return w.mem_bandwidth_gbs * 1e9 * kMemoryEfficiency; }
double FlopsPerSecond(const WorkerSpec& w) { return w.tflops * 1e12 * kComputeEfficiency; }
double NetBytesPerSecond(const WorkerSpec& w) { return w.network_gbps * 1e9 / 8 * kNetworkEfficiency; }
double Latency(const WorkerSpec& w) { return w.network_latency_us * 1e-6; }

void AddWork(std::vector<WorkerTime>* times, int w, double compute_s, double memory_s) {
  if (times == nullptr || w < 0) return;
  WorkerTime& t = (*times)[w];
  t.compute_s += compute_s;
  t.memory_s += memory_s;
  t.busy_s += std::max(compute_s, memory_s);
}

void AddNetwork(std::vector<WorkerTime>* times, int w, double seconds) {
  if (times == nullptr || w < 0) return;
  (*times)[w].network_s += seconds;
  (*times)[w].busy_s += seconds;
}

}  // namespace

CostModel::CostModel(ModelSizes sizes, ClusterSpec cluster) : sizes_(std::move(sizes)), cluster_(std::move(cluster)) {}

int64_t CostModel::UsableBytes(int worker) const {
  const WorkerSpec& w = cluster_.workers[worker];
  const double capacity = w.memory_gib * kGiB;
  const int64_t reserve = w.device == DeviceKind::kCuda ? kCudaReserveBytes : kCpuReserveBytes;
  return std::max<int64_t>(0, static_cast<int64_t>(capacity * (1 - kHeadroomFraction)) - reserve);
}

int64_t CostModel::GroupSequences(const Layout& layout) const {
  const int64_t groups = std::max(1, layout.num_groups);
  return (cluster_.serving.max_sequences + groups - 1) / groups;
}

int64_t CostModel::StageLayerMemory(int layer, int64_t sequences) const {
  const ServingSpec& s = cluster_.serving;
  if (sequences <= 0) sequences = s.max_sequences;
  return sizes_.StageLayerBytes(layer) +
         sequences * model::KvRowsHeld(s.max_context) * sizes_.KvBytesPerToken(layer, s.kv_dtype) +
         sequences * sizes_.LightningStateBytes(layer);
}

// The largest step the scheduler forms: every sequence prefilling a full chunk.
static int64_t WorkspaceTokens(int64_t sequences) { return sequences * kPrefillChunk; }

int64_t CostModel::StageWorkspaceBytes(int64_t sequences) const {
  if (sequences <= 0) sequences = cluster_.serving.max_sequences;
  // fp32 per token: x, u, y, w, m and the residual (6H); qkv, gate, O and Z (6 N*D); router logits.
  const int64_t q = sizes_.num_heads * sizes_.head_dim;
  return WorkspaceTokens(sequences) * (6 * sizes_.hidden + 6 * q + 2 * sizes_.num_experts) * kActivationBytes;
}

int64_t CostModel::TailWorkspaceBytes(int64_t sequences) const {
  if (sequences <= 0) sequences = cluster_.serving.max_sequences;
  return (sequences * sizes_.vocab + WorkspaceTokens(sequences) * sizes_.hidden) * kActivationBytes;
}

int64_t CostModel::HostWorkspaceBytes(int64_t max_per_layer) const {
  // Rows in and out (2H) and the SwiGLU intermediates (2F) of the pairs routed here; a host
  // sees at most every pair, and on average its share of them (x2 for routing skew).
  const double share = std::min(1.0, 2.0 * static_cast<double>(max_per_layer) / sizes_.num_experts);
  const double pairs = static_cast<double>(WorkspaceTokens(cluster_.serving.max_sequences)) * sizes_.experts_per_token * share;
  return static_cast<int64_t>(pairs * (2 * sizes_.hidden + 2 * sizes_.intermediate) * kActivationBytes);
}

std::vector<WorkerMemory> CostModel::Memory(const Layout& layout) const {
  const ServingSpec& s = cluster_.serving;
  const int L = layout.num_layers, E = layout.num_experts;
  const int64_t sequences = GroupSequences(layout);  // an attention worker holds its group's
  std::vector<WorkerMemory> out(cluster_.workers.size());
  for (size_t w = 0; w < out.size(); ++w) {
    const WorkerRoles& roles = layout.workers[w];
    WorkerMemory& m = out[w];
    m.capacity = static_cast<int64_t>(cluster_.workers[w].memory_gib * kGiB);
    m.usable = UsableBytes(static_cast<int>(w));
    if (roles.attention) {
      for (int l = roles.attention->begin; l < roles.attention->end; ++l) {
        m.attention += sizes_.StageLayerBytes(l);
        // Whole KV blocks, as a worker holds them and admission counts them (model/state_bytes.h).
        m.kv_cache += sequences * model::KvRowsHeld(s.max_context) * sizes_.KvBytesPerToken(l, s.kv_dtype);
        m.lightning_state += sequences * sizes_.LightningStateBytes(l);
      }
      m.workspace += StageWorkspaceBytes(sequences);
    }
    if (roles.embedding) {
      m.embedding_tail += sizes_.EmbeddingBytes();
      if (!roles.attention) m.workspace += WorkspaceTokens(sequences) * sizes_.hidden * kActivationBytes;
    }
    if (roles.lm_head) {
      m.embedding_tail += sizes_.TailBytes();
      m.workspace += TailWorkspaceBytes(sequences);
    }
    int64_t held = 0, max_per_layer = 0;
    for (int l = 0; l < L; ++l) {
      int64_t in_layer = 0;
      for (int e = 0; e < E; ++e) in_layer += roles.Holds(l, e, E) ? 1 : 0;
      held += in_layer;
      max_per_layer = std::max(max_per_layer, in_layer);
    }
    m.experts = held * sizes_.ExpertBytes(int8());
    if (held > 0) m.workspace += HostWorkspaceBytes(max_per_layer);
  }
  return out;
}

CostModel::Work CostModel::AttentionWork(int worker, int layer, const Shape& shape) const {
  const WorkerSpec& w = cluster_.workers[worker];
  const double S = static_cast<double>(shape.sequences), m = static_cast<double>(shape.tokens);
  const double p = static_cast<double>(shape.start), T = S * m;
  const double N = static_cast<double>(sizes_.num_heads), D = static_cast<double>(sizes_.head_dim);
  double bytes = static_cast<double>(sizes_.StageLayerBytes(layer));
  double flops = 2.0 * static_cast<double>(sizes_.StageLayerParams(layer)) * T;
  if (sizes_.is_softmax[layer]) {
    const double kv = static_cast<double>(sizes_.KvBytesPerToken(layer, cluster_.serving.kv_dtype));
    bytes += S * (p + m) * kv + S * m * kv;      // read the whole cache, append the new rows
    flops += S * m * (p + (m + 1) / 2) * 4 * N * D;  // q.k and p.v over the causal context
  } else {
    bytes += S * 2.0 * static_cast<double>(sizes_.LightningStateBytes(layer));  // read + write
    flops += T * N * (4 * D * D + 2 * D * std::min(m, 256.0));          // state update, output, intra-block
  }
  return {flops / FlopsPerSecond(w), bytes / BytesPerSecond(w)};
}

CostModel::Work CostModel::ExpertWork(int worker, int64_t experts, const Shape& shape) const {
  const WorkerSpec& w = cluster_.workers[worker];
  const double T = static_cast<double>(shape.sequences * shape.tokens);
  const double k_over_e = static_cast<double>(sizes_.experts_per_token) / sizes_.num_experts;
  // Uniform routing: an expert is read if any of the T tokens picks it.
  const double touched = 1.0 - std::pow(1.0 - k_over_e, T);
  const double n = static_cast<double>(experts);
  const double bytes = n * touched * static_cast<double>(sizes_.ExpertBytes(int8()));
  const double flops = 2.0 * static_cast<double>(sizes_.expert_params) * T * k_over_e * n;
  return {flops / FlopsPerSecond(w), bytes / BytesPerSecond(w)};
}

double CostModel::Transfer(int from, int to, double bytes) const {
  if (from == to || from < 0 || to < 0) return 0;
  const WorkerSpec& a = cluster_.workers[from];
  const WorkerSpec& b = cluster_.workers[to];
  return bytes / std::min(NetBytesPerSecond(a), NetBytesPerSecond(b)) + Latency(a) + Latency(b);
}

StepBreakdown CostModel::Step(const Layout& layout, const std::vector<int>& owners, const Shape& shape,
                              std::vector<WorkerTime>* times, int group) const {
  const int L = layout.num_layers, E = layout.num_experts;
  const double T = static_cast<double>(shape.sequences * shape.tokens);
  const double row_bytes = WireRowBytes();
  const double k_over_e = static_cast<double>(sizes_.experts_per_token) / E;
  StepBreakdown b;
  b.by_worker.assign(cluster_.workers.size(), 0);
  // A piece of work on the path: its time goes to its role, its resource and its worker.
  auto on_path = [&](double* role, int w, const Work& work) {
    *role += work.seconds();
    (work.compute_s > work.memory_s ? b.compute_bound_s : b.memory_bound_s) += work.seconds();
    if (w >= 0) b.by_worker[w] += work.seconds();
  };
  auto on_path_network = [&](int w, double seconds) {
    b.network_s += seconds;
    if (w >= 0) b.by_worker[w] += seconds;
  };
  auto hop = [&](int from, int to) {
    if (from == to || from < 0 || to < 0) return;
    const double bytes = T * row_bytes;
    on_path_network(from, Transfer(from, to, bytes));
    AddNetwork(times, from, bytes / NetBytesPerSecond(cluster_.workers[from]));
    AddNetwork(times, to, bytes / NetBytesPerSecond(cluster_.workers[to]));
  };

  // Token ids arrive from the coordinator (whose NIC the spec does not describe: latency only).
  const int head = layout.Holder(&WorkerRoles::embedding, group);
  if (head >= 0) {
    on_path_network(head, Latency(cluster_.workers[head]));
    const Work embed{0, T * static_cast<double>(sizes_.hidden * kWeightBytes) / BytesPerSecond(cluster_.workers[head])};
    on_path(&b.head_tail_s, head, embed);
    AddWork(times, head, embed.compute_s, embed.memory_s);
  }
  int previous = head;
  std::vector<int64_t> count(cluster_.workers.size());
  std::vector<double> host_seconds;
  for (int l = 0; l < L; ++l) {
    const int stage = layout.AttentionOwner(l, group);
    if (stage < 0) continue;  // not a valid layout; ValidateShardConfig reports it
    hop(previous, stage);
    previous = stage;
    const Work attention = AttentionWork(stage, l, shape);
    on_path(&b.attention_s, stage, attention);
    AddWork(times, stage, attention.compute_s, attention.memory_s);

    // Dispatch, expert work and combine: the hosts run in parallel, the slowest one counts.
    std::fill(count.begin(), count.end(), 0);
    for (int e = 0; e < E; ++e) {
      const int owner = owners[static_cast<size_t>(l) * E + e];
      if (owner >= 0) ++count[owner];
    }
    double slowest = 0, sent = 0;
    Work slowest_work;
    host_seconds.assign(count.size(), -1);
    for (size_t h = 0; h < count.size(); ++h) {
      if (count[h] == 0) continue;
      const int host = static_cast<int>(h);
      const Work work = ExpertWork(host, count[h], shape);
      AddWork(times, host, work.compute_s, work.memory_s);
      double seconds = work.seconds();
      if (host != stage) {
        const double bytes = static_cast<double>(count[h]) * T * k_over_e * row_bytes;
        seconds += 2 * Transfer(stage, host, bytes);
        sent += bytes;
        AddNetwork(times, host, 2 * bytes / NetBytesPerSecond(cluster_.workers[h]));
      }
      host_seconds[h] = seconds;
      if (seconds > slowest) {
        slowest = seconds;
        slowest_work = work;
      }
    }
    if (sent > 0) {
      const WorkerSpec& s = cluster_.workers[stage];
      AddNetwork(times, stage, 2 * sent / NetBytesPerSecond(s));
      // The stage's own NIC carries every row out and back.
      slowest = std::max(slowest, 2 * (sent / NetBytesPerSecond(s) + Latency(s)));
    }
    on_path(&b.experts_s, -1, slowest_work);
    on_path_network(-1, slowest - slowest_work.seconds());
    // The layer's MoE time belongs to every host that is (within rounding) the slowest.
    int tied = 0;
    for (double x : host_seconds) tied += x >= slowest * (1 - 1e-9) ? 1 : 0;
    for (size_t h = 0; h < host_seconds.size(); ++h) {
      if (host_seconds[h] >= slowest * (1 - 1e-9)) b.by_worker[h] += slowest / tied;
    }
    if (tied == 0) b.by_worker[stage] += slowest;  // the stage's NIC was the limit
  }

  const int tail = layout.Holder(&WorkerRoles::lm_head, group);
  hop(previous, tail);
  if (tail >= 0) {
    const WorkerSpec& t = cluster_.workers[tail];
    if (shape.sampled > 0) {
      const Work lm_head{2.0 * static_cast<double>(sizes_.lm_head_params * shape.sampled) / FlopsPerSecond(t),
                         static_cast<double>(sizes_.TailBytes()) / BytesPerSecond(t)};
      on_path(&b.head_tail_s, tail, lm_head);
      AddWork(times, tail, lm_head.compute_s, lm_head.memory_s);
    }
    on_path_network(tail, Latency(t));  // sampled tokens back to the coordinator
  }
  return b;
}

double CostModel::DecodeStepSeconds(const Layout& layout) const {
  const ServingSpec& s = cluster_.serving;
  const int64_t n = GroupSequences(layout);
  const Shape decode{n, 1, s.max_context - 1, n};
  return Step(layout, layout.ActiveOwners(), decode, nullptr).total();
}

double CostModel::PrefillSeconds(const Layout& layout, const std::vector<int>& owners, int64_t prompt) const {
  double seconds = 0;
  for (int64_t start = 0; start < prompt; start += kPrefillChunk) {
    const int64_t tokens = std::min<int64_t>(kPrefillChunk, prompt - start);
    const bool last = start + tokens == prompt;
    seconds += Step(layout, owners, Shape{1, tokens, start, last ? 1 : 0}, nullptr).total();
  }
  return seconds;
}

double CostModel::AttentionLayerSeconds(int worker, int layer) const {
  const ServingSpec& s = cluster_.serving;
  return AttentionWork(worker, layer, Shape{s.max_sequences, 1, s.max_context - 1, s.max_sequences}).seconds();
}

double CostModel::TailSeconds(int worker) const {
  const WorkerSpec& t = cluster_.workers[worker];
  const double compute = 2.0 * static_cast<double>(sizes_.lm_head_params * cluster_.serving.max_sequences) /
                         FlopsPerSecond(t);
  return std::max(compute, static_cast<double>(sizes_.TailBytes()) / BytesPerSecond(t));
}

double CostModel::ExpertSeconds(int worker) const {
  const ServingSpec& s = cluster_.serving;
  const Shape decode{s.max_sequences, 1, s.max_context - 1, s.max_sequences};
  const WorkerSpec& w = cluster_.workers[worker];
  const double rows = static_cast<double>(s.max_sequences) * sizes_.experts_per_token / sizes_.num_experts;
  const double bytes = rows * WireRowBytes();
  return ExpertWork(worker, 1, decode).seconds() + 2 * bytes / NetBytesPerSecond(w);
}

InFlight CostModel::PredictInFlight(const Layout& layout, int steps) const {
  const ServingSpec& s = cluster_.serving;
  InFlight f;
  f.steps = steps;
  f.sequences_per_wave = (GroupSequences(layout) + steps - 1) / steps;
  std::vector<WorkerTime> times(cluster_.workers.size());
  const Shape wave{f.sequences_per_wave, 1, s.max_context - 1, f.sequences_per_wave};
  const std::vector<int> owners = layout.ActiveOwners();
  for (int g = 0; g < layout.num_groups; ++g) f.step_s = std::max(f.step_s, Step(layout, owners, wave, &times, g).total());
  for (const WorkerTime& t : times) f.busiest_s = std::max(f.busiest_s, t.busy_s);
  f.token_s = std::max(f.step_s, steps * f.busiest_s);
  f.tokens_per_s = f.token_s > 0 ? s.max_sequences / f.token_s : 0;
  return f;
}

Prediction CostModel::Predict(const Layout& layout) const {
  const ServingSpec& s = cluster_.serving;
  Prediction p;
  p.memory = Memory(layout);
  for (size_t w = 0; w < p.memory.size(); ++w) {
    if (!p.memory[w].fits()) p.over_capacity.push_back(static_cast<int>(w));
  }
  const std::vector<int> owners = layout.ActiveOwners();
  p.active_experts.assign(cluster_.workers.size(), 0);
  for (int owner : owners) {
    if (owner >= 0) ++p.active_experts[owner];
  }
  p.decode_time.assign(cluster_.workers.size(), WorkerTime{});
  const int64_t sequences = GroupSequences(layout);
  const Shape decode{sequences, 1, s.max_context - 1, sequences};
  for (int g = 0; g < layout.num_groups; ++g) {
    StepBreakdown step = Step(layout, owners, decode, &p.decode_time, g);
    if (g == 0) p.decode = std::move(step);
  }
  p.step_s = p.decode.total();
  for (int steps = 1; steps <= std::min<int64_t>(kMaxStepsInFlight, sequences); ++steps) {
    p.in_flight.push_back(PredictInFlight(layout, steps));
    const InFlight& f = p.in_flight.back();
    const bool asked = s.steps_in_flight == steps;
    const bool better = s.steps_in_flight == 0 && f.tokens_per_s > p.served.tokens_per_s * 1.05;
    if (steps == 1 || asked || better) p.served = f;
  }
  if (s.steps_in_flight > static_cast<int>(p.in_flight.size())) p.served = PredictInFlight(layout, s.steps_in_flight);
  p.tokens_per_s = p.served.tokens_per_s;
  // Ties go to the first worker in spec order (a strictly larger value must beat the best by a
  // relative margin, so floating-point noise between equal workers cannot pick one).
  auto argmax = [](const std::vector<double>& v) {
    int best = -1;
    for (size_t i = 0; i < v.size(); ++i) {
      if (v[i] > 0 && (best < 0 || v[i] > v[best] * (1 + 1e-9))) best = static_cast<int>(i);
    }
    return best;
  };
  std::vector<double> busy(p.decode_time.size());
  for (size_t w = 0; w < busy.size(); ++w) busy[w] = p.decode_time[w].busy_s;
  p.busiest_worker = argmax(busy);
  if (p.busiest_worker >= 0) p.ceiling_tokens_per_s = s.max_sequences / busy[p.busiest_worker];
  p.bottleneck_worker = argmax(p.decode.by_worker);
  const StepBreakdown& d = p.decode;
  p.bottleneck_resource = d.network_s >= std::max(d.compute_bound_s, d.memory_bound_s) ? "network"
                          : d.compute_bound_s > d.memory_bound_s                        ? "compute"
                                                                                        : "memory";
  p.ttft_1k_s = PrefillSeconds(layout, owners, 1024);
  p.ttft_32k_s = PrefillSeconds(layout, owners, 32768);
  double price = 0;
  bool priced = true;
  for (const WorkerSpec& w : cluster_.workers) {
    if (!w.price_per_hour) priced = false;
    price += w.price_per_hour.value_or(0);
  }
  if (priced && price > 0) p.tokens_per_dollar = p.tokens_per_s * 3600 / price;
  return p;
}

}  // namespace mmx::plan
