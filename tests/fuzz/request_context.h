// What the request harnesses validate against: the test model's config and a small byte-level
// BPE tokenizer with MiniMax's special tokens (model/tokenizer/tokenizer_maker.h).
#pragma once

#include <cstdlib>
#include <memory>

#include "coordinator/request_factory.h"
#include "model/config.h"
#include "model/tokenizer/tokenizer.h"
#include "model/tokenizer/tokenizer_maker.h"

namespace mmx::fuzz {

inline const coordinator::RequestFactory& Factory() {
  static const coordinator::RequestFactory* factory = [] {
    auto config = model::ModelConfig::FromFile(MMX_FUZZ_CONFIG_JSON);
    if (!config.ok()) std::abort();
    auto tokenizer = tokenizer::Tokenizer::FromJson(tokenizer::MakeTestTokenizerJson(config->vocab_size));
    if (!tokenizer.ok()) std::abort();
    return new coordinator::RequestFactory(*config, tokenizer->release(), coordinator::ServingLimits{});
  }();
  return *factory;
}

}  // namespace mmx::fuzz
