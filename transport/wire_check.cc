#include "transport/wire_check.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "base/status_macros.h"
#include "transport/activation_rows.h"

namespace mmx::transport {
namespace {

// Steps larger than this are refused before anything is allocated for them.
constexpr int64_t kMaxStepTokens = int64_t{1} << 20;
// One timing per worker a micro-batch passed: far more than any cluster has.
constexpr int kMaxTimings = 4096;

absl::Status Bad(const std::string& what, const transport::Message& m) {
  return absl::DataLossError(absl::StrCat("bad data-plane message from peer ", m.from, ": ", what));
}

// The payload holds exactly `rows` rows of `hidden` activations in `dtype`.
absl::Status CheckRows(const char* what, int dtype, int64_t rows, int64_t hidden, const transport::Message& m) {
  const std::optional<uint64_t> expect = RowsBytes(dtype, rows * hidden);
  if (!expect) return Bad(absl::StrCat(what, " rows_dtype ", dtype, " is unknown (a newer peer?)"), m);
  if (m.payload.size() != *expect) {
    return Bad(absl::StrCat(what, " payload is ", m.payload.size(), " bytes, header implies ", rows, " rows of ", hidden,
                            dtype == v1::ROWS_BF16 ? " bf16" : " fp32"),
               m);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status RemoteError(int32_t code, const std::string& message) {
  if (code == 0) return absl::UnavailableError(message);
  if (code < 0 || code > static_cast<int32_t>(absl::StatusCode::kUnauthenticated)) return absl::UnknownError(message);
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

int64_t StepTokens(const v1::StepHeader& header) {
  int64_t total = 0;
  for (const auto& s : header.sequences()) total += s.num_tokens();
  return total;
}

absl::StatusOr<v1::StepHeader> CheckStep(const transport::Message& m, const WireLimits& c) {
  v1::StepHeader h;
  if (!h.ParseFromString(m.header)) return Bad("step header does not parse", m);
  if (h.layer() < -1 || h.layer() > c.num_layers) {
    return Bad(absl::StrCat("step layer ", h.layer(), " outside [-1, ", c.num_layers, "]"), m);
  }
  if (h.sequences_size() == 0) return Bad("step has no sequences", m);
  if (h.timings_size() > kMaxTimings) return Bad("step carries too many worker timings", m);
  std::set<uint64_t> ids;
  int64_t total = 0;
  for (const auto& s : h.sequences()) {
    if (!ids.insert(s.sequence_id()).second) {
      return Bad(absl::StrCat("sequence ", s.sequence_id(), " listed twice"), m);
    }
    if (s.num_tokens() < 1 || s.start_position() < 0) {
      return Bad(absl::StrCat("sequence ", s.sequence_id(), ": num_tokens ", s.num_tokens(),
                              ", start_position ", s.start_position()), m);
    }
    if (s.next_token_ids_size() > s.num_tokens() || s.prompt_logprobs() < 0 || s.prompt_logprobs() > c.vocab_size) {
      return Bad(absl::StrCat("sequence ", s.sequence_id(), ": ", s.next_token_ids_size(), " prompt rows to score of ",
                              s.num_tokens(), ", ", s.prompt_logprobs(), " alternatives each"), m);
    }
    for (int32_t id : s.next_token_ids()) {
      if (id < 0 || id >= c.vocab_size) return Bad(absl::StrCat("next token id ", id, " outside the vocabulary"), m);
    }
    total += s.num_tokens();
    if (total > kMaxStepTokens) return Bad("step too large", m);
  }
  if (h.layer() != -1) {
    MMX_RETURN_IF_ERROR(CheckRows("step", h.rows_dtype(), total, c.hidden_size, m));
  } else if (m.payload.size() != static_cast<uint64_t>(total) * sizeof(int32_t)) {
    return Bad(absl::StrCat("payload is ", m.payload.size(), " bytes, header implies ", total, " token ids"), m);
  }
  if (h.layer() == -1) {
    const int32_t* ids32 = reinterpret_cast<const int32_t*>(m.payload.data());
    for (int64_t i = 0; i < total; ++i) {
      if (ids32[i] < 0 || ids32[i] >= c.vocab_size) {
        return Bad(absl::StrCat("token id ", ids32[i], " outside [0, ", c.vocab_size, ")"), m);
      }
    }
  }
  return h;
}

absl::StatusOr<v1::DispatchHeader> CheckDispatch(const transport::Message& m, const WireLimits& c) {
  v1::DispatchHeader h;
  if (!h.ParseFromString(m.header)) return Bad("dispatch header does not parse", m);
  if (h.layer() < 0 || h.layer() >= c.num_layers) {
    return Bad(absl::StrCat("dispatch layer ", h.layer(), " outside [0, ", c.num_layers, ")"), m);
  }
  if (h.expert_ids_size() != h.weights_size()) return Bad("expert_ids and weights differ in length", m);
  for (int id : h.expert_ids()) {
    if (id < 0 || id >= c.num_experts) {
      return Bad(absl::StrCat("expert id ", id, " outside [0, ", c.num_experts, ")"), m);
    }
  }
  MMX_RETURN_IF_ERROR(CheckRows("dispatch", h.rows_dtype(), h.expert_ids_size(), c.hidden_size, m));
  return h;
}

absl::StatusOr<v1::CombineHeader> CheckCombine(const transport::Message& m, const WireLimits& c,
                                               int64_t expected_rows) {
  v1::CombineHeader h;
  if (!h.ParseFromString(m.header)) return Bad("combine header does not parse", m);
  if (!h.error().empty()) return RemoteError(h.error_code(), absl::StrCat("expert host ", m.from, ": ", h.error()));
  if (h.num_rows() != expected_rows) {
    return Bad(absl::StrCat("combine has ", h.num_rows(), " rows, expected ", expected_rows), m);
  }
  MMX_RETURN_IF_ERROR(CheckRows("combine", h.rows_dtype(), expected_rows, c.hidden_size, m));
  return h;
}

absl::StatusOr<v1::TokensHeader> CheckTokens(const transport::Message& m, const WireLimits& c) {
  v1::TokensHeader h;
  if (!h.ParseFromString(m.header)) return Bad("tokens header does not parse", m);
  if (h.timings_size() > kMaxTimings) return Bad("tokens message carries too many worker timings", m);
  int64_t rows = 0;
  for (const auto& l : h.logits()) {
    if (l.num_rows() < 1) return Bad(absl::StrCat("logits of sequence ", l.sequence_id(), " have ", l.num_rows(), " rows"), m);
    rows += l.num_rows();
    if (rows > kMaxStepTokens) return Bad("tokens message carries too many logits rows", m);
  }
  const uint64_t expect = static_cast<uint64_t>(rows) * c.vocab_size * sizeof(float);
  if (m.payload.size() != expect) {
    return Bad(absl::StrCat("tokens payload is ", m.payload.size(), " bytes, its logits entries imply ", expect), m);
  }
  auto check_token = [&](const v1::SampledToken& t) -> absl::Status {
    if (t.token_id() < 0 || t.token_id() >= c.vocab_size) {
      return Bad(absl::StrCat("sampled token ", t.token_id(), " outside the vocabulary"), m);
    }
    if (t.top_token_ids_size() != t.top_logprobs_size()) return Bad("top logprob lists differ in length", m);
    return absl::OkStatus();
  };
  for (const auto& t : h.tokens()) MMX_RETURN_IF_ERROR(check_token(t));
  int64_t scored = 0;
  for (const auto& p : h.prompt()) {
    scored += p.rows_size();
    if (scored > kMaxStepTokens) return Bad("tokens message carries too many prompt rows", m);
    for (const auto& t : p.rows()) MMX_RETURN_IF_ERROR(check_token(t));
  }
  return h;
}

}  // namespace mmx::transport
