// Error propagation helpers for absl::Status / absl::StatusOr at module
// boundaries (Triton-style). Errors are values; abort only on broken invariants.
#pragma once

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define GLVQ_CONCAT_INNER_(a, b) a##b
#define GLVQ_CONCAT_(a, b) GLVQ_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status glvq_status_ = (expr);        \
    if (!glvq_status_.ok()) return glvq_status_; \
  } while (false)

// `ASSIGN_OR_RETURN(auto x, MakeX());` unwraps a StatusOr or returns its error.
#define ASSIGN_OR_RETURN(lhs, expr) \
  GLVQ_ASSIGN_OR_RETURN_IMPL_(GLVQ_CONCAT_(glvq_statusor_, __LINE__), lhs, expr)
#define GLVQ_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr) \
  auto tmp = (expr);                                \
  if (!tmp.ok()) return std::move(tmp).status();    \
  lhs = std::move(tmp).value()
