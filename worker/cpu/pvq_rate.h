// Choosing how PVQ spends a target rate (the admissible splits are
// common/packed/pvq_rate.h). The best gain bits g depend on D and the rate
// in a staircase way (one more gain bit can cost a whole pulse or none), so
// by default g is chosen by measurement: every admissible g is tried on a
// fixed Gaussian sample (rows normalised by their norms, as the quantizer
// does after the RHT) and the one with the least MSE wins.
#pragma once

#include "absl/status/statusor.h"
#include "common/packed/pvq_rate.h"
#include "common/quant/config.h"

namespace glvq::cpu {

// The split of `config` (method pvq): its fixed gain bits, or the candidate
// with the least MSE on the Gaussian trial (ties: fewer gain bits).
absl::StatusOr<pvq::Rate> ChoosePvqRate(const quant::QuantizerConfig& config);

}  // namespace glvq::cpu
