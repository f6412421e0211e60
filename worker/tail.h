// The tail of the pipeline, on the worker holding the final norm and lm_head: logits for the rows
// that need them, sampling (seeded per sequence and position: nothing kept between steps), log-probabilities, and the
// reply to the coordinator with any logits a sequence asked to have returned.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "mmx/v1/wire.pb.h"
#include "model/sampling.h"
#include "model/stage_compute.h"

namespace mmx::worker {

class Tail {
 public:
  // Restricts sampling (and the log-probabilities sent) to these [begin, end) id ranges; empty =
  // every id. The returned logits are the model's, unrestricted.
  void SetSampleableRanges(std::vector<int32_t> ranges) { sampleable_ranges_ = std::move(ranges); }

  // The reply to micro-batch `header` whose last-layer activations are x [T, H]: sampled tokens,
  // and in `logits` (the reply's payload) the rows of sequences with return_logits.
  // InvalidArgument for sampling parameters ValidateSamplingParams refuses.
  absl::StatusOr<v1::TokensHeader> Run(model::StageCompute& compute, const v1::StepHeader& header, const float* x,
                                       int64_t vocab, std::vector<float>* logits);

 private:
  // Sets the logits of ids outside the sampleable ranges to -inf.
  void MaskUnsampleable(float* row, int64_t vocab) const;

  std::vector<int32_t> sampleable_ranges_;
};

}  // namespace mmx::worker
