// Shared by the planner's tests: the configs they plan for, and a cluster spec written in code.
#pragma once

#include <string>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/testing/golden.h"
#include "model/config.h"
#include "plan/cluster_spec.h"

namespace mmx::plan::testing {

inline std::string RepoPath(const std::string& relative) {
  return std::string(MMX_TEST_DATA_DIR) + "/../../" + relative;
}

inline model::ModelConfig LoadConfig(const std::string& path) {
  auto c = model::ModelConfig::FromFile(path);
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}
// MiniMax-Text-01 as MODEL.md §1 gives it (deploy/examples).
inline model::ModelConfig RealConfig() { return LoadConfig(RepoPath("deploy/examples/minimax-text-01")); }
// 8 layers (2 softmax), 8 experts, hidden 96.
inline model::ModelConfig TinyConfig() { return LoadConfig(::mmx::testing::GoldenDir()); }
// 16 layers (2 softmax), 16 experts, hidden 2048: about 7 GB of weights.
inline model::ModelConfig BenchConfig() { return LoadConfig(std::string(MMX_TEST_DATA_DIR) + "/bench-m.config.json"); }

inline WorkerSpec Worker(const std::string& name, double memory_gib, double bandwidth_gbs, double tflops = 100,
                         double network_gbps = 100, DeviceKind device = DeviceKind::kCuda) {
  WorkerSpec w;
  w.name = w.group = name;
  w.device = device;
  w.memory_gib = memory_gib;
  w.mem_bandwidth_gbs = bandwidth_gbs;
  w.tflops = tflops;
  w.network_gbps = network_gbps;
  return w;
}

inline ClusterSpec Homogeneous(int count, double memory_gib, double bandwidth_gbs, ServingSpec serving = {}) {
  ClusterSpec c;
  for (int i = 0; i < count; ++i) {
    c.workers.push_back(Worker(absl::StrCat("w-", i), memory_gib, bandwidth_gbs));
    c.workers.back().group = c.workers.back().name.substr(0, 1);  // "w"
  }
  c.serving = serving;
  return c;
}

}  // namespace mmx::plan::testing
