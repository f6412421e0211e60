// Int8 experts: the weight-only int8 copies of expert matrices a process makes at load (shard
// config `expert_dtype: int8`, `--expert-dtype int8`), and the storage that owns them. Not the
// math (kernels.h: QuantizeInt8, and Gemm on I8 views) and not the choice of which experts a
// process holds (the shard config).
//
// Why only experts: they are >= 95% of the model's bytes (MODEL.md §7) and decode reads two of
// them per token per layer from memory, so halving their bytes nearly halves the weight traffic;
// attention, router, norms, embedding and lm_head stay as the checkpoint stores them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/kernels.h"
#include "model/weights.h"

namespace mmx::model {

// How a process holds its expert weights.
//   kBf16: as the checkpoint stores them, read in place from the mmap (named after the usual
//          checkpoint dtype; an F16 or F32 checkpoint's experts stay F16 or F32).
//   kInt8: quantized at load, symmetric per output channel (one fp32 scale per row), owned.
enum class ExpertDType { kBf16, kInt8 };

// "bf16" or "int8", the spelling of shard configs and command lines. InvalidArgument otherwise.
absl::StatusOr<ExpertDType> ParseExpertDType(const std::string& name);
const char* ExpertDTypeName(ExpertDType dtype);

// An owned int8 copy of one weight matrix: q [rows, cols] int8 and scales [rows] fp32, with
// element (o, i) ~= scales[o] * q[o, i] (kernels.h QuantizeInt8). Move-only; a move keeps the
// buffers where they are, so views handed out earlier stay valid while some Int8Matrix owns them.
class Int8Matrix {
 public:
  // Quantizes `source` (BF16, F16 or F32; not I8). Allocation failure aborts, as for any vector.
  static Int8Matrix Quantize(const kernels::WeightView& source);

  // A DType::kI8 view (data, scales) of the owned buffers.
  kernels::WeightView view() const;
  // Bytes owned: rows * cols int8 plus rows fp32 scales.
  int64_t bytes() const { return rows_ * cols_ + rows_ * static_cast<int64_t>(sizeof(float)); }

 private:
  Int8Matrix() = default;

  std::unique_ptr<int8_t[]> q_;
  std::unique_ptr<float[]> scales_;
  int64_t rows_ = 0;
  int64_t cols_ = 0;
};

// Tells the kernel that this process no longer needs the pages wholly inside w's bytes
// (madvise MADV_DONTNEED on the page-aligned interior; partial pages at either end may hold a
// neighbouring tensor and are kept). On the checkpoint's read-only MAP_PRIVATE mapping this only
// drops the process's references to page-cache pages: the file is untouched, and reading the
// range again would page it back in. Returns the bytes released (0 if the range covers no whole
// page or madvise fails, which only costs memory).
int64_t ReleaseSourcePages(const kernels::WeightView& w);

// Quantizes every loaded expert of `moe` to int8: each of w1, w3, w2 is quantized, its view
// replaced by the int8 copy's, its source pages released, and the copy appended to `storage`,
// which must outlive every use of `moe`'s views. `on_matrix`, if set, is called after each
// matrix with its source bytes (for load progress). Experts already in I8 are left as they are.
void QuantizeExperts(MoeWeights* moe, std::vector<Int8Matrix>* storage,
                     const std::function<void(int64_t)>& on_matrix = nullptr);

}  // namespace mmx::model
