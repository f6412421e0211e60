#include "model/int8_experts.h"

#include <sys/mman.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"

namespace mmx::model {

absl::StatusOr<ExpertDType> ParseExpertDType(const std::string& name) {
  if (name == "bf16") return ExpertDType::kBf16;
  if (name == "int8") return ExpertDType::kInt8;
  return absl::InvalidArgumentError(absl::StrCat("expert dtype '", name, "' is neither bf16 nor int8"));
}

const char* ExpertDTypeName(ExpertDType dtype) {
  switch (dtype) {
    case ExpertDType::kBf16: return "bf16";
    case ExpertDType::kInt8: return "int8";
  }
  return "?";
}

Int8Matrix Int8Matrix::Quantize(const kernels::WeightView& source) {
  MMX_CHECK(source.dtype != DType::kI8);
  Int8Matrix m;
  m.rows_ = source.rows;
  m.cols_ = source.cols;
  // For overwrite: QuantizeInt8 writes every byte, and its threads are the first to touch them.
  m.q_ = std::make_unique_for_overwrite<int8_t[]>(static_cast<size_t>(source.rows * source.cols));
  m.scales_ = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(source.rows));
  kernels::QuantizeInt8(source, m.q_.get(), m.scales_.get());
  return m;
}

kernels::WeightView Int8Matrix::view() const {
  return kernels::WeightView{q_.get(), DType::kI8, rows_, cols_, scales_.get()};
}

namespace {

const uintptr_t kPageSize = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));

// Starts reading the source in ahead of the quantizer's page faults (a cold checkpoint on disk
// would otherwise arrive one readahead window at a time). Advisory: failure changes nothing.
void AdviseWillNeed(const kernels::WeightView& w) {
  const uintptr_t begin = reinterpret_cast<uintptr_t>(w.data) / kPageSize * kPageSize;
  const uintptr_t end = reinterpret_cast<uintptr_t>(w.data) + static_cast<uintptr_t>(WeightBytes(w));
  if (w.data != nullptr && end > begin) madvise(reinterpret_cast<void*>(begin), end - begin, MADV_WILLNEED);
}

}  // namespace

int64_t ReleaseSourcePages(const kernels::WeightView& w) {
  const uintptr_t page = kPageSize;
  const uintptr_t begin = reinterpret_cast<uintptr_t>(w.data);
  const uintptr_t end = begin + static_cast<uintptr_t>(WeightBytes(w));
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;
  if (w.data == nullptr || last <= first) return 0;
  if (madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED) != 0) return 0;
  return static_cast<int64_t>(last - first);
}

void QuantizeExperts(MoeWeights* moe, std::vector<Int8Matrix>* storage,
                     const std::function<void(int64_t)>& on_matrix) {
  for (ExpertWeights& e : moe->experts) {
    if (!e.loaded()) continue;
    for (kernels::WeightView* w : {&e.w1, &e.w3, &e.w2}) {
      if (w->dtype == DType::kI8) continue;
      const kernels::WeightView source = *w;
      AdviseWillNeed(source);
      storage->push_back(Int8Matrix::Quantize(source));
      *w = storage->back().view();
      ReleaseSourcePages(source);
      if (on_matrix) on_matrix(WeightBytes(source));
    }
  }
}

}  // namespace mmx::model
