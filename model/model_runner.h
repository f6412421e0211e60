// ModelRunner: the whole model in one process. It owns every piece's weights (views into the
// checkpoint's mmap) and the per-sequence state, and runs one step over a packed batch of
// sequences: embed -> each decoder layer (model/layers.h) -> final norm and lm_head.
// This is the executable spec the distributed engine must match: it calls the same layer
// functions with every placement local. Not thread-safe: one Step at a time.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "model/checkpoint.h"
#include "model/int8_experts.h"
#include "model/layers.h"
#include "model/weights.h"

namespace mmx::model {

// The tokens one sequence feeds in a step: a prefill chunk or one decode token.
struct StepInput {
  int64_t sequence_id = 0;
  std::vector<int32_t> tokens;
  bool all_logits = false;  // logits for every token (else only for the last one)
};

struct ModelLoadOptions {
  // kInt8 quantizes every expert at load (weight-only int8, per-output-channel scales) and runs
  // the int8 GEMM on them; the rest of the model stays as the checkpoint stores it.
  ExpertDType expert_dtype = ExpertDType::kBf16;
};

struct StepOutput {
  // Per input, in input order: [rows, V] logits, rows = tokens.size() or 1.
  std::vector<std::vector<float>> logits;
  // Weight bytes this step read: every attention block and router, each expert that had
  // tokens (once), the embedding rows and lm_head. The numerator of achieved bandwidth.
  int64_t weight_bytes_read = 0;
};

class ModelRunner {
 public:
  // Opens the checkpoint directory and maps every tensor (nothing is copied, except the int8
  // experts that options.expert_dtype = kInt8 makes; their source pages are released).
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Load(const std::string& dir,
                                                          const ModelLoadOptions& options = {});

  const ModelConfig& config() const { return checkpoint_->config(); }

  // Activation precision of batched GEMMs (kernels.h): kFp32 (default, golden-exact) or kBf16.
  void set_activation_precision(kernels::ActivationPrecision p) { precision_ = p; }

  // Creates empty state for a new sequence. AlreadyExists if the id is live.
  absl::Status StartSequence(int64_t sequence_id);
  // Frees a sequence's state. Unknown ids are ignored.
  void EndSequence(int64_t sequence_id);
  // Tokens already processed by a live sequence.
  int64_t SequenceLength(int64_t sequence_id) const;

  // Runs one step. InvalidArgument for an unknown sequence, an empty token list, a sequence
  // listed twice, or a token id outside [0, V).
  absl::StatusOr<StepOutput> Step(const std::vector<StepInput>& inputs);

 private:
  ModelRunner() = default;

  std::unique_ptr<Checkpoint> checkpoint_;
  kernels::ActivationPrecision precision_ = kernels::ActivationPrecision::kFp32;
  kernels::WeightView embedding_;
  std::vector<AttentionBlockWeights> attention_;  // [L]
  std::vector<MoeWeights> experts_;               // [L]
  std::vector<Int8Matrix> int8_experts_;          // what experts_' I8 views point into
  TailWeights tail_;
  std::map<int64_t, std::unique_ptr<SequenceState>> sequences_;
};

}  // namespace mmx::model
