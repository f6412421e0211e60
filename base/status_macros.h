// Status helpers in the shape of Abseil's (Debian 12's abseil 20220623 ships none):
// MMX_RETURN_IF_ERROR, MMX_ASSIGN_OR_RETURN, and MMX_CHECK for the code's own invariants.
// MMX_CHECK is not for input validation: bad input gets an absl::Status.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define MMX_STATUS_CONCAT_INNER_(a, b) a##b
#define MMX_STATUS_CONCAT_(a, b) MMX_STATUS_CONCAT_INNER_(a, b)

#define MMX_RETURN_IF_ERROR(expr)                   \
  do {                                              \
    ::absl::Status mmx_status_ = (expr);            \
    if (!mmx_status_.ok()) return mmx_status_;      \
  } while (0)

#define MMX_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                               \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()

// MMX_ASSIGN_OR_RETURN(Checkpoint ckpt, Checkpoint::Open(dir));
#define MMX_ASSIGN_OR_RETURN(lhs, rexpr) \
  MMX_ASSIGN_OR_RETURN_IMPL_(MMX_STATUS_CONCAT_(mmx_statusor_, __LINE__), lhs, rexpr)

#define MMX_CHECK(cond)                                                          \
  do {                                                                           \
    if (!(cond)) {                                                               \
      std::fprintf(stderr, "%s:%d: MMX_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                              \
    }                                                                            \
  } while (0)
