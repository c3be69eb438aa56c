// The "trellis" method (docs/algorithms.md §6): a bitshift trellis-coded
// quantizer in the spirit of QTIP. Each row of each column group (32
// columns by default: quant::DefaultGroupSize) is one tail-biting trellis
// sequence (common/packed/trellis_tensor.h), found by Viterbi search
// (trellis_viterbi.h), on top of
//   - RHT (always; the codebook is Gaussian and wants incoherent weights),
//   - a rank-one scale model: a gain per row (its RMS) times a gain per
//     group (the group's RMS over gain-normalised rows, times the
//     Gaussian-optimal ratio for its window and bits),
//   - BlockLDLQ error feedback with the Hessian, one group per block
//     (`ldlq`, on by default; the gains are then measured on the weights
//     a fast trial sweep (window 8) actually codes, since feedback moves
//     later columns),
//   - SDBA for fractional rates (`sdba`): groups get ⌊bits⌋ or ⌈bits⌉ by
//     salience, exactly averaging `bits`.
#pragma once

#include <memory>

#include "common/quant/config.h"
#include "worker/engine/quantizer.h"

namespace glvq::cpu {

std::unique_ptr<engine::Quantizer> MakeTrellisQuantizer(const quant::QuantizerConfig& config);

}  // namespace glvq::cpu
