#include "kernels/kernels.h"

namespace mmx::kernels {
namespace {
thread_local ActivationPrecision g_precision = ActivationPrecision::kFp32;
}  // namespace

ActivationPrecision CurrentActivationPrecision() { return g_precision; }

ScopedActivationPrecision::ScopedActivationPrecision(ActivationPrecision precision) : previous_(g_precision) {
  g_precision = precision;
}

ScopedActivationPrecision::~ScopedActivationPrecision() { g_precision = previous_; }

}  // namespace mmx::kernels
