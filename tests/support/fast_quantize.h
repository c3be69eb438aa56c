// A quick quantizer configuration for tests that need some packed model.
#pragma once

#include "common/quant/config.h"

namespace glvq::testing {

// 6-bit RTN in groups of 32: fast, and on stories260K far enough from the
// original that KL and top-1 agreement are visibly not 0 and 1 (KL 0.31,
// top-1 0.66: the tiny model is very sensitive; 3 bits give KL 4.4).
// The paper preset's tuning (no RHT): tensors split into ranges under a
// memory budget, as the service tests need.
inline quant::QuantizerConfig FastTestConfig() {
  quant::QuantizerConfig c = quant::PresetConfig(quant::Preset::kPaper);
  c.method = quant::Method::kRtn;
  c.bits = 6;
  c.group_size = 32;
  return c;
}

}  // namespace glvq::testing
