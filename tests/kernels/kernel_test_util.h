// Helpers shared by the kernel tests: seeded random inputs, weight matrices in each dtype, and
// tolerance checks that report the first offending index.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "base/bf16.h"
#include "base/dtype.h"
#include "gtest/gtest.h"
#include "kernels/cpu/cpu_features.h"
#include "kernels/kernels.h"

namespace mmx::kernels::testing {

inline std::vector<float> RandomVector(size_t n, uint32_t seed, float lo = -1.f, float hi = 1.f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (float& f : v) f = dist(rng);
  return v;
}

// A weight matrix stored in `dtype`, filled from random fp32 values.
struct TestWeights {
  DType dtype;
  int64_t rows, cols;
  std::vector<uint16_t> half;  // BF16 / F16 storage
  std::vector<float> full;     // F32 storage

  TestWeights(DType d, int64_t r, int64_t c, uint32_t seed) : dtype(d), rows(r), cols(c) {
    std::vector<float> v = RandomVector(static_cast<size_t>(r * c), seed);
    if (d == DType::kF32) {
      full = std::move(v);
    } else {
      half.resize(v.size());
      for (size_t i = 0; i < v.size(); ++i) half[i] = d == DType::kBF16 ? FloatToBf16(v[i]) : FloatToF16(v[i]);
    }
  }
  WeightView View() const {
    return WeightView{dtype == DType::kF32 ? static_cast<const void*>(full.data()) : half.data(), dtype, rows,
                      cols};
  }
};

// Expects |actual[i] - expected[i]| <= abs_tol[i] for every i (abs_tol broadcast if size 1).
inline void ExpectClose(const std::vector<float>& actual, const std::vector<float>& expected,
                        const std::vector<float>& abs_tol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    const float tol = abs_tol.size() == 1 ? abs_tol[0] : abs_tol[i];
    const float err = std::fabs(actual[i] - expected[i]);
    if (!(err <= tol)) {  // also catches NaN
      ADD_FAILURE() << what << ": index " << i << " actual " << actual[i] << " expected " << expected[i]
                    << " err " << err << " tol " << tol;
      return;
    }
  }
}

// Runs `body` once per SIMD level this CPU supports, with that level forced.
template <typename Fn>
void ForEachIsa(Fn body) {
  for (Isa isa : SupportedIsas()) {
    ScopedIsa scoped(isa);
    SCOPED_TRACE(IsaName(isa));
    body(isa);
  }
}

}  // namespace mmx::kernels::testing
