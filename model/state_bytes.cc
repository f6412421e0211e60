#include "model/state_bytes.h"

#include "absl/strings/str_cat.h"

namespace mmx::model {

absl::StatusOr<DType> ParseKvDType(absl::string_view name) {
  if (name == "bf16") return DType::kBF16;
  if (name == "fp32") return DType::kF32;
  return absl::InvalidArgumentError(absl::StrCat("kv_dtype '", name.substr(0, 32),
                                                 "' is neither bf16 (as the model is served) nor fp32 (golden-exact)"));
}

const char* KvDTypeName(DType kv_dtype) { return kv_dtype == DType::kBF16 ? "bf16" : "fp32"; }

int64_t KvBytesPerToken(const ModelConfig& config, DType kv_dtype) {
  return 2 * config.kv_width() * static_cast<int64_t>(DTypeSize(kv_dtype));
}

int64_t LightningStateBytes(const ModelConfig& config) {
  return int64_t{config.num_attention_heads} * config.head_dim * config.head_dim * static_cast<int64_t>(sizeof(float));
}

int64_t SequenceStateBytes(const ModelConfig& config, int begin, int end, int64_t positions, DType kv_dtype) {
  int64_t bytes = 0;
  for (int l = begin; l < end; ++l) {
    bytes += config.is_softmax(l) ? KvRowsHeld(positions) * KvBytesPerToken(config, kv_dtype)
                                  : LightningStateBytes(config);
  }
  return bytes;
}

}  // namespace mmx::model
